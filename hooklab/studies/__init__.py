"""Studies: experiments and analyses built on the hooklab runtime."""
