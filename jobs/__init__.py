"""Background runs: a persistent SQLite queue, a worker that runs trainers as child processes, a monitor."""
