"""The Zoho fields each mapping leaves unread on purpose, so they are never reported as schema drift.

Zoho sends far more than the ERP tables keep: display copies (`*_formatted`, `currency_symbol`),
names beside ids, base-currency twins (`bcy_*`), lock and approval state, nested blocks (addresses,
taxes, documents). Each set below is what one Zoho object carries that its handler does not read,
listed from the recorded samples in zohosim/samples (tests/handlers/test_schema_drift.py holds
every sample and the simulator's objects to raising no drift). A field that appears in none of
these, and that no column reads, is new: schema drift (sync.schema_drift).

Custom fields (`custom_fields`, `custom_field_hash`, and `cf_…` keys) and the version fields are
known everywhere and not listed.
"""

from __future__ import annotations


def _fields(text: str) -> frozenset[str]:
    return frozenset(text.split())


ITEM = _fields(
    """
    account_id account_name associated_template_id attribute_id1 attribute_name1 attribute_name2 attribute_name3
    attribute_option_id1 attribute_option_name1 attribute_option_name2 attribute_option_name3 brand
    can_be_purchased can_be_sold created_at created_time crm_owner_id default_hosted_page_url
    default_price_brackets default_purchase_unit_conversion_id default_sales_unit_conversion_id documents ean
    group_id group_name has_variant hsn_or_sac image_id image_name image_type integration_references
    inventory_account_id is_default_tax_applied is_fulfillable is_linked_with_zohocrm is_modifier_item
    is_tax_expired is_taxable isbn item_code item_tax_preferences locations lock_detail lock_details warehouses
    locked_actions locked_fields manufacturer maximum_order_quantity minimum_order_quantity
    offline_created_date_with_time part_number price_brackets pricebook_rate pricing_scheme product_subtype
    product_type purchase_account_id purchase_account_name purchase_description purchase_tax_information
    purpose_of_use reorder_level sales_channels sales_margin sales_rate sat_item_key_code source tags
    tax_country_code tax_end_date tax_groups_details tax_information tax_name tax_percentage tax_start_date
    tax_status tax_type track_inventory unit_group_id unit_group_name unit_id unitkey_code upc vendor_id
    vendor_name zcrm_product_id
    """
)

CONTACT = _fields(
    """
    account_id account_name ach_supported addresses approver_id approvers_list associated_with_square
    bank_accounts billing_address can_show_customer_ob can_show_vendor_ob cards checks consent_date
    contact_category contact_persons contact_relation_type contact_salutation contact_tax_information
    created_by_id created_by_name created_date created_time credit_limit_exceeded_amount crm_owner_id currency_id
    currency_symbol customer_currency_summaries customer_sub_type default_templates department designation
    documents entity_address_id exchange_rate facebook first_name has_transaction integration_references
    invited_by is_bcy_only_contact is_client_review_asked is_client_review_settings_enabled is_consent_agreed
    is_credit_limit_migration_completed is_crm_customer is_linked_with_zohocrm is_sms_enabled language_code
    language_code_formatted last_modified_by_id last_name lock_detail lock_details locked_actions mobile notes
    opening_balance_amount opening_balance_amount_bcy opening_balances outstanding_ob_payable_amount
    outstanding_ob_receivable_amount outstanding_payable_amount outstanding_payable_amount_bcy
    outstanding_receivable_amount outstanding_receivable_amount_bcy owner_id owner_name payment_reminder_enabled
    payment_terms payment_terms_id payment_terms_label photo_url portal_receipt_count portal_status
    price_precision pricebook_id pricebook_name primary_contact_id sales_channel shipping_address source
    submitted_by submitted_by_email submitted_by_name submitted_by_photo_url submitted_date submitter_id tags
    tax_id_type tax_id_value tax_reg_label track_1099 twitter unused_credits_payable_amount
    unused_credits_payable_amount_bcy unused_credits_receivable_amount unused_credits_receivable_amount_bcy
    unused_retainer_payments upi_mandates vpa_list website zcrm_account_id zcrm_contact_id zohopeople_client_id
    """
)

INVOICE = _fields(
    """
    account_id account_identifier account_name ach_payment_initiated ach_supported adjustment
    adjustment_account_id adjustment_account_name adjustment_description allow_partial_payments approver_id
    approvers_list attachment_name bcy_adjustment bcy_discount_total bcy_rounding_mode bcy_shipping_charge
    bcy_shipping_charge_tax bcy_sub_total bcy_tax_total bcy_total billing_address can_send_in_mail
    can_send_invoice_sms can_show_kit_return channel_invoice_id client_viewed_time color_code computation_type
    contact contact_category contact_persons contact_persons_associated contact_persons_details created_by_id
    created_by_name created_date created_time credits_applied currency_id currency_name_formatted currency_symbol
    current_sub_status current_sub_status_id customer_custom_field_hash customer_custom_fields
    customer_default_billing_address customer_name deliverychallans discount discount_account_id
    discount_account_name discount_applied_on_amount discount_percent discount_total discount_type documents
    early_payment_discount_amount early_payment_discount_due_days early_payment_discount_percentage
    ecomm_operator_id ecomm_operator_name email estimate_id exceptions exchange_invoices in_process_payments
    includes_package_tracking_info inprocess_transaction_present invoice_installments invoice_source invoice_url
    is_autobill_enabled is_backorder is_client_review_settings_enabled is_discount_before_tax
    is_early_payment_discount_applicable is_emailed is_inclusive_tax is_kit_partial_return is_last_child_invoice
    is_progress_invoice is_viewed_by_client issued_date last_modified_by_id last_payment_date
    last_reminder_sent_date lock_detail lock_details locked_actions merchant_id merchant_name
    next_reminder_date_formatted notes offline_created_date_with_time orientation page_height page_width
    payment_discount payment_expected_date payment_made payment_options payment_reminder_enabled payment_terms
    payment_terms_id payment_terms_label price_precision qr_code reader_offline_payment_initiated
    recurring_invoice_id reference_number reminders_sent retention_items retention_override_preference
    rounding_mode roundoff_value sales_channel salesorder_id salesorder_number salesorders salesperson_id
    salesperson_name schedule_time shipping_address shipping_bills shipping_charge shipping_charge_account_id
    shipping_charge_account_name shipping_charge_exclusive_of_tax shipping_charge_exclusive_of_tax_formatted
    shipping_charge_inclusive_of_tax shipping_charge_inclusive_of_tax_formatted shipping_charge_tax
    shipping_charge_tax_exemption_code shipping_charge_tax_exemption_id shipping_charge_tax_formatted
    shipping_charge_tax_id shipping_charge_tax_name shipping_charge_tax_percentage shipping_charge_tax_type
    shipping_charge_taxes stop_reminder_until_payment_expected_date sub_statuses sub_total_inclusive_of_tax
    subject_content submitted_by submitted_by_email submitted_by_name submitted_by_photo_url submitted_date
    submitter_id tags tax_amount_withheld tax_override_preference tax_rounding taxes tds_calculation_type
    template_id template_name template_type terms total_retention_amount total_taxable_amount
    transaction_rounding_type unprocessed_payment_amount unused_retainer_payments write_off_amount
    zcrm_potential_id zcrm_potential_name
    """
)

INVOICE_LINE = _fields(
    """
    account_id account_name available_for_sale_stock available_stock bcy_rate bill_id bill_item_id committed_stock
    cost_amount description discount_account_id discount_account_name discounts documents expense_id
    expense_receipt_name header_id header_name image_document_id internal_name is_modifier_item item_code
    item_custom_fields item_order item_type line_item_category line_item_taxes mapped_items markup_percent
    pricebook_id pricing_scheme project_id purchase_rate sales_rate salesorder_item_id stock_on_hand tags tax_name
    tax_percentage tax_type time_entry_ids unit
    """
)

BILL = _fields(
    """
    account_id account_name adjustment adjustment_account_id adjustment_account_name adjustment_description
    allocated_landed_costs approver_id approvers_list attachment_name bill_order_type billing_address
    billing_address_id can_send_in_mail client_viewed_time color_code computation_type contact_category
    created_by_id created_time currency_id currency_name_formatted currency_symbol current_sub_status
    current_sub_status_id discount discount_account_id discount_account_name discount_amount
    discount_applied_on_amount discount_percent discount_setting discount_total discount_type documents
    due_by_days due_in_days entity_type is_approval_required is_bill_reconciliation_violated
    is_discount_before_tax is_inclusive_tax is_item_level_tax_calc is_line_item_invoiced is_tally_bill
    is_uber_bill is_viewed_by_client last_modified_id non_catalog_items_count notes orientation page_height
    page_width payment_expected_date payment_made payment_terms payment_terms_label payments price_precision
    purchaseorders recurring_bill_id reference_id reference_number retention_items scanned_po_id scanned_po_number
    source sub_statuses sub_total_inclusive_of_tax subject_content submitted_by submitted_by_email
    submitted_by_name submitted_by_photo_url submitted_date submitter_id tags tax_override_preference tax_rounding
    taxes tds_calculation_type template_id template_name template_type terms total_retention_amount
    track_discount_in_account unallocated_landed_costs unprocessed_payment_amount unused_credits_payable_amount
    vendor_credits vendor_credits_applied vendor_name
    """
)

BILL_LINE = _fields(
    """
    account_code account_id account_name bcy_rate customer_id customer_name description discount_account_id
    discount_account_name discounts header_id header_name image_document_id image_name image_type invoice_id
    invoice_number is_billable item_code item_custom_fields item_matching_type item_order item_type
    line_item_category line_item_taxes markup_percent pricebook_id project_id project_name purchase_request_items
    purchaseorder_id purchaseorder_item_id quantity_received receipt_line_item_id receive_line_items sales_rate
    tags tax_name tax_percentage tax_type unit
    """
)

CREDIT_NOTE = _fields(
    """
    account_id account_name adjustment adjustment_account_id adjustment_account_name adjustment_description
    approver_id approvers_list bcy_rounding_mode bcy_shipping_charge_tax billing_address client_viewed_time
    color_code computation_type contact_category contact_persons contact_persons_associated created_by_id
    created_by_name created_time creditnote_refunds currency_id currency_name_formatted currency_symbol
    current_sub_status current_sub_status_id customer_name discount discount_account_id discount_account_name
    discount_applied_on_amount discount_type documents exceptions invoice_id invoices_credited
    is_discount_before_tax is_emailed is_inclusive_tax is_viewed_by_client issued_date last_modified_by_id
    lock_detail lock_details locked_actions notes offline_created_date_with_time orientation page_height
    page_width price_precision reference_number rounding_mode roundoff_value sales_channel salesperson_id
    salesperson_name shipping_address shipping_charge shipping_charge_account_id shipping_charge_account_name
    shipping_charge_exclusive_of_tax shipping_charge_exclusive_of_tax_formatted shipping_charge_inclusive_of_tax
    shipping_charge_inclusive_of_tax_formatted shipping_charge_tax shipping_charge_tax_exemption_code
    shipping_charge_tax_exemption_id shipping_charge_tax_formatted shipping_charge_tax_id shipping_charge_tax_name
    shipping_charge_tax_percentage shipping_charge_tax_type shipping_charge_taxes sub_statuses
    sub_total_inclusive_of_tax subject_content submitted_by submitted_by_email submitted_by_name
    submitted_by_photo_url submitted_date submitter_id tags tax_override_preference tax_rounding taxes
    tds_calculation_type template_id template_name template_type terms total_credits_used total_refunded_amount
    transaction_rounding_type
    """
)

CREDIT_NOTE_LINE = _fields(
    """
    account_id account_name bcy_rate can_skip_stock_tracking description discount_account_id discount_account_name
    discounts image_document_id internal_name invoice_id invoice_item_id is_credit_only_item is_modifier_item
    item_code item_custom_fields item_order item_type line_item_category line_item_taxes mapped_items pricebook_id
    pricing_scheme project_id sales_margin tags tax_name tax_percentage tax_type unit
    """
)

SALES_ORDER = _fields(
    """
    adjustment adjustment_description billing_address contact_persons_associated created_time currency_id
    currency_symbol customer_name delivery_method delivery_method_id discount discount_amount discount_type
    documents estimate_id gst_no gst_treatment is_discount_before_tax is_pre_gst location_id location_name notes
    place_of_supply price_precision pricebook_id reference_number salesperson_id salesperson_name shipping_address
    shipping_charge taxes template_id template_name template_type terms
    """
)

SALES_ORDER_LINE = _fields(
    """
    bcy_rate combo_type description hsn_or_sac image_id image_name image_type is_combo_product is_invoiced
    item_custom_fields item_order location_id location_name mapped_items quantity_invoiced quantity_packed
    quantity_shipped sat_item_key_code tax_name tax_percentage tax_type tds_tax_id unit unitkey_code
    """
)

PAYMENT = _fields(
    """
    account_id account_identifier account_name account_type attachment_name bank_charges bank_charges_account_id
    bank_charges_account_name beat_id beat_number can_send_in_mail can_send_payment_sms card_type created_by
    created_time currency_code currency_id currency_symbol customer_advance_account_id
    customer_advance_account_name customer_name deposit_details description discount_amount documents
    exchange_rate imported_transactions is_client_review_settings_enabled is_early_payment_discount_applicable
    is_ondc_channel is_payment_details_required journey_plan_id last_four_digits lock_details locked_actions
    offline_created_date_with_time online_transaction_id orientation page_height page_width payment_gateway
    payment_link_id payment_number_prefix payment_number_suffix payment_refunds payment_status price_precision
    rounding_mode sales_channel sales_person_id sales_person_name settlement_status tags tax_account_id
    tax_account_name tax_amount_withheld template_id template_name template_type tender_id
    """
)

PAYMENT_LINE = _fields(
    """
    allow_partial_payments apply_date balance date discount_amount due_date installments invoice_customer_id
    invoice_customer_name invoice_installments invoice_number invoice_payment_id
    is_early_payment_discount_applicable price_precision tax_amount_withheld total
    """
)

ADJUSTMENT = _fields(
    """
    created_time description location_id location_name reason_id reference_number total
    """
)

ADJUSTMENT_LINE = _fields(
    """
    adjustment_account_id adjustment_account_name batches description is_combo_product item_total location_name
    name serial_numbers storages unit
    """
)

PRICEBOOK = _fields(
    """
    currency_id decimal_place description is_increase percentage rounding_type sales_or_purchase_type
    """
)

PRICEBOOK_LINE = _fields(
    """
    name sales_rate sku status
    """
)

USER = _fields(
    """
    is_current_user is_customer_segmented is_vendor_segmented photo_url user_role
    """
)

LOCATION = _fields(
    """
    is_primary location_actual_available_stock status
    """
)
