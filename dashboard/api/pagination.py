from rest_framework.pagination import PageNumberPagination


class Pages(PageNumberPagination):
    """Every list's pages (`count`, `next`, `previous`, `results`); `?page_size=` up to 500 for scripts."""

    page_size_query_param = "page_size"
    max_page_size = 500
