"""Escalation policies: the shipped ladders, what a policy may not say, and their JSON form."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from workflows.policy import (
    DEMO_POLICY,
    STANDARD_POLICY,
    Channel,
    Policy,
    SendWindow,
    StepAction,
    Tone,
)


def policy_dict(**changes: Any) -> dict[str, Any]:
    """A valid policy as the API would receive it (JSON-like), with some fields changed."""
    data: dict[str, Any] = {
        "name": "custom",
        "steps": [
            {
                "name": "before_due",
                "offset": "-P3D",
                "tone": "friendly",
                "channels": ["email"],
                "template": "reminder_before_due",
            },
            {
                "name": "overdue_1",
                "offset": "P1D",
                "tone": "neutral",
                "channels": ["email", "sms"],
                "template": "overdue_1",
            },
            {"name": "hand_over", "offset": "P30D", "action": "hand_over"},
        ],
    }
    data.update(changes)
    return data


def rejected(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(data)
    return str(caught.value)


# ---- shipped policies --------------------------------------------------------------------------


def test_standard_policy_ladder() -> None:
    steps = STANDARD_POLICY.steps
    assert [s.name for s in steps] == [
        "before_due",
        "overdue_1",
        "overdue_2",
        "overdue_3",
        "final_notice",
        "call_debtor",
        "hand_over",
    ]
    assert [s.offset for s in steps] == [timedelta(days=d) for d in (-3, 1, 7, 14, 30, 45, 60)]
    assert [s.tone for s in steps if s.is_message] == [
        Tone.friendly,
        Tone.friendly,
        Tone.neutral,
        Tone.firm,
        Tone.final,
    ]
    assert steps[-2].action == StepAction.agent_task
    assert steps[-1].action == StepAction.hand_over


def test_standard_policy_sends_in_office_hours_on_working_days() -> None:
    window = STANDARD_POLICY.send_window
    assert window is not None
    assert window.days == ["mon", "tue", "wed", "thu", "fri"]
    assert (window.start, window.end) == (time(9, 0), time(17, 0))
    assert window.skip_public_holidays


def test_demo_policy_has_no_send_window_and_short_ladder() -> None:
    assert DEMO_POLICY.send_window is None
    assert [s.name for s in DEMO_POLICY.steps] == [s.name for s in STANDARD_POLICY.steps]
    assert DEMO_POLICY.steps[-1].offset == timedelta(minutes=10)


def test_step_describe() -> None:
    assert STANDARD_POLICY.steps[2].describe() == "email+sms · neutral · overdue_2"
    assert STANDARD_POLICY.steps[-1].describe() == "hand_over · hand_over"


# ---- what a policy may not say -----------------------------------------------------------------


def test_valid_custom_policy_accepted() -> None:
    policy = Policy.model_validate(policy_dict())
    assert policy.steps[0].offset == timedelta(days=-3)
    assert policy.steps[1].channels == [Channel.email, Channel.sms]


def test_unordered_offsets_rejected() -> None:
    data = policy_dict()
    data["steps"][0]["offset"] = "P2D"
    assert "in order of offset" in rejected(data)


def test_duplicate_step_names_rejected() -> None:
    data = policy_dict()
    data["steps"][1]["name"] = "before_due"
    assert "step names must be unique" in rejected(data)


def test_softening_tone_rejected() -> None:
    data = policy_dict()
    data["steps"][0]["tone"] = "firm"
    assert "tones must not soften" in rejected(data)


def test_hand_over_not_last_rejected() -> None:
    data = policy_dict()
    data["steps"].append(
        {
            "name": "after",
            "offset": "P40D",
            "tone": "final",
            "channels": ["email"],
            "template": "final_notice",
        }
    )
    assert "hand_over closes the journey, so it must be the last step" in rejected(data)


def test_step_with_template_and_action_rejected() -> None:
    data = policy_dict()
    data["steps"][1]["action"] = "agent_task"
    assert "'overdue_1' needs exactly one of template or action" in rejected(data)


def test_step_with_neither_template_nor_action_rejected() -> None:
    data = policy_dict()
    del data["steps"][1]["template"]
    assert "needs exactly one of template or action" in rejected(data)


def test_message_step_without_channel_rejected() -> None:
    data = policy_dict()
    data["steps"][1]["channels"] = []
    assert "needs a tone and at least one channel" in rejected(data)


def test_send_window_rules() -> None:
    assert SendWindow(days=["Monday", "fri", "mon"]).days == ["mon", "fri"]
    with pytest.raises(ValidationError, match="start must be earlier"):
        SendWindow(start=time(17, 0), end=time(9, 0))
    with pytest.raises(ValidationError, match="days must be a non-empty list"):
        SendWindow(days=["someday"])


# ---- JSON form ---------------------------------------------------------------------------------


def test_offsets_are_iso_8601_durations_in_json() -> None:
    dumped = STANDARD_POLICY.model_dump(mode="json")
    assert [s["offset"] for s in dumped["steps"]] == [
        "-P3D",
        "P1D",
        "P7D",
        "P14D",
        "P30D",
        "P45D",
        "P60D",
    ]
    assert DEMO_POLICY.model_dump(mode="json")["steps"][0]["offset"] == "-PT30S"


def test_negative_offset_parsed_from_json() -> None:
    policy = Policy.model_validate(policy_dict())
    assert policy.steps[0].offset == timedelta(days=-3)
    assert policy.model_dump(mode="json")["steps"][0]["offset"] == "-P3D"


@pytest.mark.parametrize("policy", [STANDARD_POLICY, DEMO_POLICY], ids=lambda p: p.name)
def test_shipped_policies_round_trip_through_json(policy: Policy) -> None:
    assert Policy.model_validate(policy.model_dump(mode="json")) == policy
    assert Policy.model_validate_json(policy.model_dump_json()) == policy
