"""The five worker roles: what each does with its messages."""
