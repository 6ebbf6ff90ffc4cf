"""The ``Compliance`` group: back-office staff who investigate and act, but never edit money.

It may view every model of the books, the users and both audit trails, and run
the back-office actions (freeze/unfreeze, suspend/reinstate, reverse) through
custom permissions. It gets no add/change/delete permission on any model, so it
can neither edit money fields nor grant itself (or anyone) permissions.

``compliance_group_sync`` is written against an app registry so the data
migration (historical models, before ``post_migrate`` has created any
permission) and the ``post_migrate`` hook (which restores the group after a test
flush) share it.
"""

GROUP_NAME = "Compliance"

# (app_label, model) -> codenames this group gets on it.
VIEW_MODELS = [
    ("accounts", "user"),
    ("ledger", "ledgeraccount"),
    ("ledger", "journalentry"),
    ("ledger", "posting"),
    ("transactions", "transaction"),
    ("audit", "auditrecord"),
    ("audit", "auditseal"),
    ("audit", "verificationrun"),
    ("audit", "dashboard"),
    ("approvals", "approvalrequest"),
]

# The back-office actions. Declared here rather than in the owning models'
# Meta so the audit app owns who may run them; codename -> (app, model, name).
ACTION_PERMISSIONS = {
    "suspend_user": ("accounts", "user", "Can suspend and reinstate users"),
    "freeze_ledgeraccount": ("ledger", "ledgeraccount", "Can freeze and unfreeze accounts"),
    "reverse_transaction": ("transactions", "transaction", "Can reverse transactions"),
    "verify_auditrecord": ("audit", "auditrecord", "Can run and see audit verification"),
    "decide_approvalrequest": ("approvals", "approvalrequest", "Can approve and reject four-eyes requests"),
}

# Permission strings as ``user.has_perm`` takes them.
PERM_SUSPEND = "accounts.suspend_user"
PERM_FREEZE = "ledger.freeze_ledgeraccount"
PERM_REVERSE = "transactions.reverse_transaction"
PERM_DECIDE = "approvals.decide_approvalrequest"


def compliance_group_sync(apps) -> None:
    """Create (or complete) the Compliance group and the permissions it needs. Idempotent."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")

    def content_type(app_label: str, model: str):
        return ContentType.objects.get_or_create(app_label=app_label, model=model)[0]

    perms = []
    for app_label, model in VIEW_MODELS:
        perms.append(
            Permission.objects.get_or_create(
                content_type=content_type(app_label, model),
                codename=f"view_{model}",
                defaults={"name": f"Can view {model}"},
            )[0]
        )
    for codename, (app_label, model, name) in ACTION_PERMISSIONS.items():
        perms.append(
            Permission.objects.get_or_create(
                content_type=content_type(app_label, model), codename=codename, defaults={"name": name}
            )[0]
        )
    group, _ = Group.objects.get_or_create(name=GROUP_NAME)
    group.permissions.add(*perms)
