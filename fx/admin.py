"""Back office for currency conversion: rates edited through ``fx.services.rate_set`` (audited), quotes read-only.

A rate's form has no model fields: every save goes through the service, so
the admin, the API and ``fx_rates_load`` write rates one way, with one audit
record each (``fx.rate_set``, ``via: admin``). Nothing here edits money.
"""

from django import forms
from django.contrib import admin

from audit.admin_tools import ReadOnlyAdmin
from fx import services
from fx.models import FxQuote, FxRate
from fx.rounding import rate_text
from ledgerx.exceptions import ValidationFailed


class RateForm(forms.ModelForm):
    base = forms.CharField(max_length=3, help_text="ISO code, e.g. USD.")
    quote = forms.CharField(max_length=3, help_text="ISO code, e.g. NGN.")
    mid = forms.CharField(max_length=40, help_text="Units of quote per unit of base, e.g. 1532.75 (at most 15 significant digits).")
    spread_bps = forms.IntegerField(min_value=0, max_value=services.SPREAD_MAX_BPS, help_text="Basis points the house keeps, each way.")

    class Meta:
        model = FxRate
        fields = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for name in ("base", "quote", "spread_bps"):
                self.fields[name].initial = getattr(self.instance, name)
            self.fields["mid"].initial = rate_text(self.instance.mid)

    def _post_clean(self):
        # No model validation of the unsaved instance: the form carries no model field, and the
        # service both validates and replaces a pair entered the other way round (which the
        # instance's unique check would call a duplicate).
        pass

    def clean(self):
        data = super().clean()
        for name in ("base", "quote"):
            if name in data:
                data[name] = data[name].strip().upper()
        if not self.errors:
            try:
                services.rate_input_validate(base=data["base"], quote=data["quote"], mid=data["mid"], spread_bps=data["spread_bps"])
            except ValidationFailed as exc:
                for name, messages in (exc.fields or {}).items():
                    self.add_error(name if name in self.fields else None, messages)
        return data


@admin.register(FxRate)
class FxRateAdmin(admin.ModelAdmin):
    form = RateForm
    list_display = ("base", "quote", "mid_text", "spread_bps", "updated_by", "updated_at")
    list_select_related = ("updated_by",)
    ordering = ("base", "quote")
    sortable_by = ()

    @admin.display(description="mid")
    def mid_text(self, obj) -> str:
        return rate_text(obj.mid)

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The form as declared: its fields are not the model's (non-editable) ones, so no modelform_factory.
        return RateForm

    def get_readonly_fields(self, request, obj=None):
        return ("updated_by", "updated_at") if obj else ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a pair's rate is replaced, never removed: quotes and conversions name it

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        row = services.rate_set(
            actor=request.user, base=data["base"], quote=data["quote"], mid=data["mid"],
            spread_bps=data["spread_bps"], source="admin",
        )
        obj.__dict__.update({field.attname: getattr(row, field.attname) for field in FxRate._meta.concrete_fields})
        obj._state.adding = False


@admin.register(FxQuote)
class FxQuoteAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "source_currency", "source_amount", "destination_currency", "destination_amount",
                    "rate", "created_at", "expires_at", "used_at")
    list_select_related = ("user",)
    fields = list_display + ("mid", "spread_bps", "spread_amount", "given")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
