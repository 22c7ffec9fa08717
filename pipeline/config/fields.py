"""What every params section shares: unknown keys rejected, values frozen, the field types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from pipeline.config.errors import describe_value_error, validate
from pipeline.metrics import TargetScale


def _name(value: object) -> object:
    """Column names and levels as text: YAML reads a key such as 2010 as a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Name = Annotated[StrictStr, BeforeValidator(_name), Field(min_length=1)]
ColumnKind = Literal["numeric", "categorical", "ordinal", "datetime"]
Scaling = Literal["standard", "quantile", "robust"]
AUTO = "auto"


def auto_or(inner: Any) -> Any:
    """A type taking "auto" (a size the plan derives from the rows, the columns and the
    budget; docs/sizing.md) or a value of `inner`; a bad value is one message for its key."""
    adapter = TypeAdapter(inner)

    def check(value: object) -> object:
        if value == AUTO:
            return AUTO
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            message = describe_value_error(error)
            if error["type"] in ("int_type", "float_type", "finite_number"):
                message = message.replace(", got", " or 'auto', got", 1)
            raise ValueError(message) from None

    return Annotated[object, PlainValidator(check)]
# written back as params.yaml spells it (false | true | log1p)
Scale = Annotated[TargetScale, BeforeValidator(TargetScale.from_param),
                  PlainSerializer(lambda scale: scale.param)]


class Section(BaseModel):
    """A params.yaml section: unknown keys rejected, values frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def replace(self, changes: Mapping[str, Any], where: str = "") -> Self:
        """A copy with some values replaced (e.g. by tuned params), validated like the file."""
        return validate(type(self), {**self.model_dump(), **changes}, where)
