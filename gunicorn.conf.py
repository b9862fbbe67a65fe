"""gunicorn's configuration, for `make run` (tdscore/devserver.py) and the systemd unit alike.

    gunicorn -c gunicorn.conf.py tdscore.wsgi:application

The environment sets what differs between machines (README "Environment"): TDS_BIND (one address
or several, comma-separated; default 127.0.0.1:8000), TDS_WEB_WORKERS (processes, default 2) and
TDS_WEB_THREADS (threads per process, default 4). Command-line options override this file.
Each worker process holds at most TDS_DB_POOL_MAX database connections, whatever its threads.
"""

import os

bind = [address.strip() for address in os.environ.get("TDS_BIND", "127.0.0.1:8000").split(",") if address.strip()]
workers = int(os.environ.get("TDS_WEB_WORKERS", "2"))
threads = int(os.environ.get("TDS_WEB_THREADS", "4"))
# gthread: a slow request (a big admin page) never holds the webhook receiver up.
worker_class = "gthread"
graceful_timeout = 10
# No control socket: its default path is per user, so two servers on one machine would fight over it.
control_socket_disable = True

# The access log on stderr, with the time each request took; ?token= and credential headers are
# redacted by the logger class before a line is written.
accesslog = "-"
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
logger_class = "tdscore.access_log.RedactingGunicornLogger"
# X-Forwarded-* are believed from the local proxy (nginx on the same host) only.
forwarded_allow_ips = os.environ.get("TDS_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
