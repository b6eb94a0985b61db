"""placeholder, being written."""

def main():
    raise SystemExit("not built yet")
