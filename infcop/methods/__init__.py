"""IMP methods, one module each, behind one registry (see registry.py for what a method declares).

A method module imports what it needs from here:

    from infcop.methods import (
        BuildContext, MethodSpec, Role, fraction_schedule, magnitude, register_method,
    )
"""

from infcop.methods.blocks import (
    excluded_layers,
    fraction_schedule,
    magnitude,
    pq_index,
    pq_schedule,
    pq_settings,
)
from infcop.methods.registry import (
    METHODS,
    BuildContext,
    Method,
    MethodSpec,
    NoParams,
    Role,
    get_method,
    load_methods,
    register_method,
)

__all__ = [
    "METHODS",
    "BuildContext",
    "Method",
    "MethodSpec",
    "NoParams",
    "Role",
    "excluded_layers",
    "fraction_schedule",
    "get_method",
    "load_methods",
    "magnitude",
    "pq_index",
    "pq_schedule",
    "pq_settings",
    "register_method",
]
