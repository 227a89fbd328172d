"""Rendering: effects and recipes as records, a planner with step cache ids, and a
sandboxed ffmpeg executor.

Layers, lowest first: the safe ffmpeg layer (``ffmpeg_build``, ``limits``, ``probe``,
``allowlist``, ``sandbox``, ``content_key``); effects as records (``effects``, ``params``) and
their filter graphs (``effect_graphs``, ``jobs``); recipes (``recipes``); planning
(``planner``) and the step cache (``step_cache``); execution (``executor``, ``beats``) and the
records it signs (``records``, ``lineage``). The daemon composes them in
``daemon/render_service.py``.
"""

from .allowlist import ALLOWED_FILTERS, check_filter_graph, check_output_args
from .beats import detect_beats, read_beats_record
from .content_key import content_key
from .effects import (
    BUILTIN_AUTHOR,
    BUILTIN_EFFECTS,
    Effect,
    UnknownEffect,
    effect_by_cid,
    effect_by_name,
    effect_cid,
    effect_record,
)
from .errors import (
    GraphRefused,
    InputRefused,
    RenderError,
    RenderFailed,
    RenderTimeout,
    SandboxUnavailable,
)
from .executor import Executor, RenderResult, StepOutput
from .ffmpeg_build import ffmpeg_exe, ffmpeg_version
from .limits import Limits
from .lineage import LineageNode, collect_lineage, format_tree
from .params import ParamError, ParamSpec, parse_param_text
from .planner import DELIVERY_FORMAT, INTERMEDIATE_FORMAT, Plan, Step, plan_key_blocks, plan_recipe
from .probe import MediaInfo, StreamInfo, probe
from .recipes import Recipe, RecipeError, RecipeNode, load_recipe_yaml, recipe_from_record
from .records import (
    hardware_description,
    make_receipt_record,
    make_render_provenance,
    software_versions,
)
from .sandbox import FfmpegInput, RunReport, decode_audio_pcm, run_ffmpeg
from .step_cache import CachedStep, StepCache

__all__ = [
    # errors
    "RenderError",
    "InputRefused",
    "GraphRefused",
    "RenderFailed",
    "RenderTimeout",
    "SandboxUnavailable",
    "ParamError",
    "RecipeError",
    "UnknownEffect",
    # the ffmpeg layer
    "ffmpeg_exe",
    "ffmpeg_version",
    "Limits",
    "MediaInfo",
    "StreamInfo",
    "probe",
    "ALLOWED_FILTERS",
    "check_filter_graph",
    "check_output_args",
    "FfmpegInput",
    "RunReport",
    "run_ffmpeg",
    "decode_audio_pcm",
    "content_key",
    # effects and recipes
    "BUILTIN_AUTHOR",
    "BUILTIN_EFFECTS",
    "Effect",
    "ParamSpec",
    "parse_param_text",
    "effect_by_cid",
    "effect_by_name",
    "effect_cid",
    "effect_record",
    "Recipe",
    "RecipeNode",
    "load_recipe_yaml",
    "recipe_from_record",
    # planning and execution
    "DELIVERY_FORMAT",
    "INTERMEDIATE_FORMAT",
    "Plan",
    "Step",
    "plan_key_blocks",
    "plan_recipe",
    "CachedStep",
    "StepCache",
    "Executor",
    "RenderResult",
    "StepOutput",
    "detect_beats",
    "read_beats_record",
    # records and lineage
    "make_receipt_record",
    "make_render_provenance",
    "software_versions",
    "hardware_description",
    "LineageNode",
    "collect_lineage",
    "format_tree",
]
