"""Natural names for the LLM of stage 1; vocabularies and published lists keep their spellings."""

from __future__ import annotations

from lmseg.attributes import DEFAULT_INSTRUCTION, AnswerLimits, GenerationJob
from lmseg.llm import SamplingSettings
from lmseg.llm.instruction import load_instruction
from lmseg.vocab import ClassEntry, get_vocabulary, natural_entry, natural_name
from lmseg.vocab.class_lists import load_class_list


def test_glued_benchmark_names_read_naturally() -> None:
    names = get_vocabulary("voc20").names
    assert [natural_name(n) for n in names if natural_name(n) != n] == ["dining table", "potted plant", "tv monitor"]
    assert natural_name("playingfield") == "playing field" and natural_name("sofa") == "sofa"
    assert natural_entry(ClassEntry(("tvmonitor", "tv monitor", "screen"))).names == ("tv monitor", "screen")


def test_only_the_llm_reads_them(tmp_path) -> None:
    assert "tvmonitor" in get_vocabulary("voc20").names  # the vocabulary (and the table's class_name) keep theirs
    assert load_class_list("trident/voc20").classes[-1].names == ("tvmonitor",)  # so does the published list
    job = GenerationJob(get_vocabulary("voc20"), load_instruction(None, default=DEFAULT_INSTRUCTION),
                        SamplingSettings(), AnswerLimits(), tmp_path / "t.parquet")
    message = job.conversation(19)[0]["content"]
    assert 'a typical "tv monitor"' in message and "tvmonitor" not in message
    assert 'a typical "aeroplane"' in job.conversation(0)[0]["content"]
