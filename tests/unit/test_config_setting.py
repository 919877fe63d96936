"""`configs.setting`: a config value of the wrong type is one line naming its key."""

import pytest
from omegaconf import OmegaConf

from fingerspell.configs import setting

CFG = OmegaConf.create(
    {"a": {"n": 3, "x": 0.5, "whole": 4.0, "flag": True, "word": "abc", "none": None, "yes": "yes"}}
)


def test_values_of_the_right_type_come_back_typed() -> None:
    assert setting(CFG, "a.n", int) == 3
    assert setting(CFG, "a.whole", int) == 4  # YAML 4.0 is a whole number
    assert isinstance(setting(CFG, "a.whole", int), int)
    assert setting(CFG, "a.n", float) == 3.0
    assert setting(CFG, "a.x", float) == 0.5
    assert setting(CFG, "a.flag", bool) is True


def test_missing_or_null_keys_give_the_default_and_required_ones_say_so() -> None:
    assert setting(CFG, "a.absent", int, 7) == 7
    assert setting(CFG, "a.none", float, None) is None  # an optional setting
    assert setting(CFG, "a.absent", float, None) is None
    with pytest.raises(ValueError, match=r"^a[.]none must be set to a whole number$"):
        setting(CFG, "a.none", int)
    with pytest.raises(ValueError, match=r"^a[.]absent must be set to true or false$"):
        setting(CFG, "a.absent", bool)


@pytest.mark.parametrize(
    ("key", "kind", "message"),
    [
        ("a.word", int, "a.word='abc' must be a whole number"),
        ("a.x", int, "a.x=0.5 must be a whole number"),
        ("a.word", float, "a.word='abc' must be a number"),
        ("a.flag", int, "a.flag=True must be a whole number"),  # bool is an int to Python, not here
        ("a.yes", bool, "a.yes='yes' must be true or false"),  # bool("yes") would be silently true
        ("a.n", bool, "a.n=3 must be true or false"),
    ],
)
def test_wrong_types_name_the_key_and_what_it_must_be(key: str, kind: type, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message.replace('.', '[.]')}$"):
        setting(CFG, key, kind)
