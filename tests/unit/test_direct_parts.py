"""A direct upload's parts: 8 MiB, larger (whole MiB) only to stay within S3's 10,000
parts; every part but the last exactly the part size."""

from app.resumable.direct import (
    MAX_PARTS,
    PART_BYTES,
    Facts,
    is_sha256_hex,
    iso_utc,
    part_size_for,
    part_sizes,
)

MiB = 1024 * 1024


def test_the_part_size_grows_only_past_ten_thousand_parts() -> None:
    assert part_size_for(1) == PART_BYTES
    assert part_size_for(PART_BYTES * MAX_PARTS) == PART_BYTES
    assert part_size_for(PART_BYTES * MAX_PARTS + 1) == 9 * MiB
    five_tib = 5 * 1024**4
    size = part_size_for(five_tib)
    assert size % MiB == 0 and size == 525 * MiB
    assert len(part_sizes(five_tib, size)) <= MAX_PARTS
    assert len(part_sizes(five_tib, size - MiB)) > MAX_PARTS


def test_every_part_but_the_last_is_whole() -> None:
    assert part_sizes(17 * MiB, PART_BYTES) == [PART_BYTES, PART_BYTES, MiB]
    assert part_sizes(16 * MiB, PART_BYTES) == [PART_BYTES, PART_BYTES]
    assert part_sizes(5, PART_BYTES) == [5]
    assert part_sizes(0, PART_BYTES) == []


def test_facts_and_words() -> None:
    facts = Facts(PART_BYTES, "a" * 64)
    assert '"part_size": 8388608' in facts.dumps(5)
    assert '"part_checksum": true' in facts.dumps(5)
    assert '"part_checksum": false' in facts.dumps(PART_BYTES + 1)
    assert is_sha256_hex("0" * 64) and not is_sha256_hex("0" * 63) and not is_sha256_hex("G" * 64)
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
