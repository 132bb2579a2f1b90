"""Step progress from log lines: the bar the job view shows comes from here."""

from __future__ import annotations

import pytest

from ltx_jupyter._progress import parse_progress

# Lines as tqdm 4.x prints them (default format, ascii bars, no bar, slow steps, hours), and
# as diffusion pipelines word their step logs.
PROGRESS_LINES = [
    ("  0%|          | 0/30 [00:00<?, ?it/s]", (0, 30)),
    (" 40%|████      | 12/30 [00:05<00:07,  2.34it/s]", (12, 30)),
    ("100%|██████████| 30/30 [00:12<00:00,  2.45it/s]", (30, 30)),
    (" 57%|█████▋    | 17/30 [00:07<00:05,  2.41it/s]", (17, 30)),
    ("Denoising:  57%|█████▋    | 17/30 [00:07<00:05,  2.41it/s]", (17, 30)),
    (" 40%|####      | 12/30 [00:05<00:07,  2.34it/s]", (12, 30)),
    (" 10%|█         | 3/30 [1:02:03<9:18:27, 1241.03s/it]", (3, 30)),
    ("  7%|▋         | 2/30 [00:10<02:20,  5.01s/it, loss=0.3]", (2, 30)),
    (" 40%|████      | 12/30", (12, 30)),  # bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}"
    ("12/30 [00:05<00:07,  2.34it/s]", (12, 30)),
    ("Denoising: 12/30 [00:05<00:07, 2.34it/s]", (12, 30)),
    ("0/40 [00:00<?, ?it/s]", (0, 40)),
    ("2024-05-01 12:00:03 INFO  40%|████      | 12/30 [00:05<00:07,  2.34it/s]", (12, 30)),
    # A bar redrawn with carriage returns inside one log message: the latest state counts.
    (" 10%|█         | 3/30 [00:01<00:09, 2.9it/s]\r 20%|██        | 6/30 [00:02<00:08]", (6, 30)),
    ("step 12/30", (12, 30)),
    ("Step 12 of 30", (12, 30)),
    ("steps: 12/30", (12, 30)),
    ("Steps: 12/30", (12, 30)),
    ("STEP 1 / 8", (1, 8)),
    ("[inference] denoising step 5/30 done", (5, 30)),
    ("Step 30 of 30 finished", (30, 30)),
]

NO_PROGRESS_LINES = [
    "",
    "Loading model 1/3 shards",
    "Downloading 12/30 files",
    "Generated a 768x512 video at 24 fps",
    "2024/01/02 12:00 starting worker",
    "aspect ratio 16/9",
    "12it [00:05,  2.34it/s]",  # tqdm with no total
    "| seed | 12/30 |",  # a table row: no percentage before the bar
    "12/30",
    "footsteps 3/4",
    "step 31/30",
    "Step 0 of 0",
    "steps: 5/0",
    "100%|██████████| 31/30 [00:12<00:00,  2.45it/s]",
    "stepping 3/30",
    "step -1/30",
]


@pytest.mark.parametrize(("line", "expected"), PROGRESS_LINES)
def test_step_counts_are_read(line: str, expected: tuple[int, int]) -> None:
    assert parse_progress(line) == expected


@pytest.mark.parametrize("line", NO_PROGRESS_LINES)
def test_lines_without_step_counts(line: str) -> None:
    assert parse_progress(line) is None


def test_an_impossible_last_count_does_not_hide_an_earlier_valid_one() -> None:
    assert parse_progress("step 3/30 then garbage step 99/30") == (3, 30)


def test_tqdm_counts_whatever_its_bar_counts() -> None:
    # A bar is progress of something: shard loading shows as progress too, which is honest.
    line = "Loading checkpoint shards: 100%|██████████| 3/3 [00:02<00:00,  1.10it/s]"
    assert parse_progress(line) == (3, 3)


def test_a_two_pass_run_counts_its_second_pass_as_a_second_stage(make_shell, local_server):
    # A 13B model logs a step count per pass: the bar restarts, and says it is stage 2.
    from ltx_jupyter import JobStatus

    from .shells import eventually, magics_of

    shell = make_shell(local_server)
    shell.run_cell_magic(
        "ltx",
        "-o job --endpoint ltx-video-13b-distilled --param first_pass_num_inference_steps=3 "
        "--param second_pass_num_inference_steps=2 --frames 9",
        "a red fox",
    )
    job = shell.user_ns["job"]
    view = magics_of(shell).views[job.local_id]
    eventually(lambda: job.done)
    assert job.status == JobStatus.COMPLETED
    steps = [e.message for e in job.logs if e.message.startswith("pass ")]
    assert steps == [f"pass 1 step {i}/3" for i in (1, 2, 3)] + [
        f"pass 2 step {i}/2" for i in (1, 2)
    ]
    assert job.progress == (2, 2) and job.progress_stage == 2
    assert job.progress_text == "stage 2 · step 2/2"
    eventually(lambda: view.progress.description == "2: 2/2")
    assert view.progress.value == 1.0


def test_a_single_pass_run_has_no_stage_in_its_status(make_shell, local_server):
    shell = make_shell(local_server)
    shell.run_cell_magic("ltx", "--wait -o job --steps 4", "a red fox")
    job = shell.user_ns["job"]
    assert job.progress_stage == 1 and job.progress_text == "step 4/4"
