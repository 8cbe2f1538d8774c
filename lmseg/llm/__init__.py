"""The LLM layer: what every stage that asks an LLM shares (no torch).

* :mod:`~lmseg.llm.backends`: vLLM in process or any OpenAI-compatible server, behind one
  :class:`~lmseg.llm.backends.base.Backend` protocol, with the shared
  :class:`~lmseg.llm.backends.base.SamplingSettings` (the concrete backends are imported from
  their modules, so that using one never imports the other's dependencies);
* :mod:`~lmseg.llm.instruction`: the instructions (jinja2 files of ``instructions/``: the message
  sent to the LLM), loaded and rendered;
* :mod:`~lmseg.llm.jobs`: the table-job contract (:class:`~lmseg.llm.jobs.LLMTableJob`, its
  settings, :class:`~lmseg.llm.jobs.TableReport`) and the one generate-validate-retry step
  (:func:`~lmseg.llm.jobs.ask`);
* :mod:`~lmseg.llm.tables`: atomic Parquet writes, the per-table lock, outputs checked first;
* :mod:`~lmseg.llm.ray_engine`: the Ray engine options of a table job (no Ray import).

Stage 1's attributes (:mod:`lmseg.attributes`) and MGCA's caption phrases
(:mod:`lmseg.captions`) are built on it and never import each other; the Ray executor
(:mod:`lmseg.distributed.llm_tables`) drives any :class:`~lmseg.llm.jobs.LLMTableJob`.
"""

from lmseg.llm.backends.base import Backend, BackendUnavailable, RequestFailed, SamplingSettings
from lmseg.llm.instruction import ChatMessages, Instruction, load_instruction
from lmseg.llm.jobs import InvalidAnswer, JobSettings, LLMTableJob, TableReport, ask
from lmseg.llm.ray_engine import RayEngineOptions, choose_engine
from lmseg.llm.tables import check_writable_file, check_writable_folder, exclusive_lock, write_table

__all__ = [
    "Backend",
    "BackendUnavailable",
    "ChatMessages",
    "Instruction",
    "InvalidAnswer",
    "JobSettings",
    "LLMTableJob",
    "RayEngineOptions",
    "RequestFailed",
    "SamplingSettings",
    "TableReport",
    "ask",
    "check_writable_file",
    "check_writable_folder",
    "choose_engine",
    "exclusive_lock",
    "load_instruction",
    "write_table",
]
