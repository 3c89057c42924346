"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from app.models.admin import AdminInvite, AdminRole, AdminUser
from app.models.audit import AuditEntry
from app.models.base import MAX_ROW_ID, InvalidTransition, utcnow
from app.models.catalog import VAT_RATES, Product
from app.models.health import ProviderHealth
from app.models.installation import Installation, install_id
from app.models.integrations import ApiClient, CallbackDelivery, CallbackPreset
from app.models.jobs import Job, JobStatus
from app.models.login_throttle import LoginThrottle
from app.models.orders import (
    OPEN_ORDER_STATUSES,
    OPEN_ORDERS_SQL,
    ORDER_TRANSITIONS,
    Order,
    OrderChannel,
    OrderItem,
    OrderStatus,
)
from app.models.people import ACCESS_TRANSITIONS, AccessRequest, AccessStatus, StaffMember
from app.models.ratelimit import RateLimitCounter
from app.models.receipts import RECEIPT_TRANSITIONS, Receipt, ReceiptKind, ReceiptStatus
from app.models.sbp import (
    ACTIVATION_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    QR_TRANSITIONS,
    REFUND_TRANSITIONS,
    ActivationStatus,
    BankEvent,
    CashLinkActivation,
    Payment,
    PaymentStatus,
    QrCode,
    QrKind,
    QrStatus,
    Refund,
    RefundStatus,
)
from app.models.shop import TelegramLinkToken
from app.models.storefront import (
    FULFILMENT_TRANSITIONS,
    BankDirectory,
    Category,
    Customer,
    Delivery,
    Fulfilment,
    ManagerMessage,
    ProductPhoto,
    ShopSettings,
)

__all__ = [
    "ACCESS_TRANSITIONS",
    "ACTIVATION_TRANSITIONS",
    "FULFILMENT_TRANSITIONS",
    "MAX_ROW_ID",
    "OPEN_ORDERS_SQL",
    "OPEN_ORDER_STATUSES",
    "ORDER_TRANSITIONS",
    "PAYMENT_TRANSITIONS",
    "QR_TRANSITIONS",
    "RECEIPT_TRANSITIONS",
    "REFUND_TRANSITIONS",
    "VAT_RATES",
    "AccessRequest",
    "AccessStatus",
    "ActivationStatus",
    "AdminInvite",
    "AdminRole",
    "AdminUser",
    "ApiClient",
    "AuditEntry",
    "BankDirectory",
    "BankEvent",
    "CallbackDelivery",
    "CallbackPreset",
    "CashLinkActivation",
    "Category",
    "Customer",
    "Delivery",
    "Fulfilment",
    "Installation",
    "InvalidTransition",
    "Job",
    "JobStatus",
    "LoginThrottle",
    "ManagerMessage",
    "Order",
    "OrderChannel",
    "OrderItem",
    "OrderStatus",
    "Payment",
    "PaymentStatus",
    "Product",
    "ProductPhoto",
    "ProviderHealth",
    "QrCode",
    "QrKind",
    "QrStatus",
    "RateLimitCounter",
    "Receipt",
    "ReceiptKind",
    "ReceiptStatus",
    "Refund",
    "RefundStatus",
    "ShopSettings",
    "StaffMember",
    "TelegramLinkToken",
    "install_id",
    "utcnow",
]
