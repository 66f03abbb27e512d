"""The README's first screen tells the truth (issue G10): its quick-start block holds exactly the
two commands (run the demo; run the whole test suite), and the first one, run verbatim from the
repository root, starts a server whose printed instructions — also run verbatim, in a fresh
virtual environment with the connector from PyPI — read the sample tables.

(The second command is the one running this test: scripts/test.sh.)
"""
import os
import re
import signal
import subprocess
import threading
import time

from conftest import REPO_ROOT

README = REPO_ROOT / "README.md"


def quickstart_block():
    text = README.read_text()
    first_screen = "\n".join(text.splitlines()[:40])
    m = re.search(r"```sh\n(.*?)```", first_screen, re.S)
    assert m, "the README's first screen has a ```sh block"
    return [ln.strip() for ln in m.group(1).splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_the_first_screen_shows_exactly_two_commands():
    assert quickstart_block() == ["cargo run -- demo", "./scripts/test.sh"]
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "./scripts/test.sh" in ci, ".ci/run calls the README's test command"


def test_the_demo_command_runs_verbatim_and_its_snippet_reads_the_tables(tmp_path):
    cmd = quickstart_block()[0]
    env = {k: v for k, v in os.environ.items() if k != "LAKESHARE_STATE"}
    proc = subprocess.Popen(cmd, shell=True, cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    lines = []

    def pump():
        for line in proc.stdout:
            lines.append(line)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 600  # `cargo run` may build first
        while "Press Ctrl-C to stop.\n" not in lines:
            assert proc.poll() is None, f"the demo exited: {''.join(lines)}\n{proc.stderr.read()}"
            assert time.monotonic() < deadline, f"the demo printed no instructions: {''.join(lines)}"
            time.sleep(0.1)
        out = "".join(lines)
        assert re.search(r"lakeshare listening on http://127\.0\.0\.1:\d+/delta-sharing", out), out
        # The printed instructions: a venv command, then a heredoc of Python, run as printed.
        m = re.search(r"^(python3 -m venv .*)$\n(^\S+/python - <<'EOF'$\n.*?^EOF$)", out, re.M | re.S)
        assert m, f"the demo prints shell commands to paste:\n{out}"
        setup, snippet = m.group(1), m.group(2)
        p = subprocess.run(setup, shell=True, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-2000:]
        p = subprocess.run(snippet, shell=True, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"the pasted snippet failed:\n{p.stderr[-3000:]}"
        counts = p.stdout.strip().splitlines()[-1].split()
        assert len(counts) == 3 and all(int(c) > 0 for c in counts), p.stdout
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
