"""The face: parse with click, call one core function, render what comes back."""
