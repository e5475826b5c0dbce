"""What a gallery operator runs: doctor, the systemd service, health lines, logs, bench."""
