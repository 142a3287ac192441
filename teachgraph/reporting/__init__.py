"""What a person sees of a run: the live console display and the written report with its figures."""
