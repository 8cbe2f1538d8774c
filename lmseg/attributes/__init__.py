"""Stage 1 of LMSeg: LLM-written visual attributes per class, stored in Parquet.

This package imports no torch vision code; it runs in the LLM environment.
"""

from lmseg.attributes.answer import AnswerLimits, Attributes, InvalidAnswer, parse_answer
from lmseg.llm.backends.base import Backend, BackendUnavailable, RequestFailed, SamplingSettings
from lmseg.attributes.generate import GenerationJob, GenerationReport, run_generation
from lmseg.llm.prompt import PromptTemplate, load_template
from lmseg.attributes.reader import attribute_frame, load_attribute_frame, load_attribute_table, load_attributes
from lmseg.attributes.scoring import ScoringMethod
from lmseg.attributes.store import SCHEMA, SCHEMA_VERSION, AttributeRow, read_table

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "AnswerLimits",
    "AttributeRow",
    "Attributes",
    "Backend",
    "BackendUnavailable",
    "GenerationJob",
    "GenerationReport",
    "InvalidAnswer",
    "PromptTemplate",
    "RequestFailed",
    "SamplingSettings",
    "ScoringMethod",
    "attribute_frame",
    "load_attribute_frame",
    "load_attribute_table",
    "load_attributes",
    "load_template",
    "parse_answer",
    "read_table",
    "run_generation",
]
