"""Stage 1 of LMSeg: LLM-written visual attributes per class, stored in Parquet.

Built on the LLM layer (:mod:`lmseg.llm`: backends, instructions, table jobs). This
package imports no torch vision code; it runs in the LLM environment, and its table is read
back in either environment (:mod:`lmseg.attributes.reader`).
"""

from lmseg.attributes.answer import AnswerLimits, Attributes, parse_answer
from lmseg.attributes.generate import DEFAULT_INSTRUCTION, GenerationJob, run_generation
from lmseg.attributes.reader import attribute_frame, load_attribute_frame, load_attribute_table, load_attributes
from lmseg.attributes.scoring import ScoringMethod
from lmseg.attributes.store import SCHEMA, SCHEMA_VERSION, AttributeRow, read_table

__all__ = [
    "DEFAULT_INSTRUCTION",
    "SCHEMA",
    "SCHEMA_VERSION",
    "AnswerLimits",
    "AttributeRow",
    "Attributes",
    "GenerationJob",
    "ScoringMethod",
    "attribute_frame",
    "load_attribute_frame",
    "load_attribute_table",
    "load_attributes",
    "parse_answer",
    "read_table",
    "run_generation",
]
