"""``python -m missile_classifier`` runs the command-line interface."""

from missile_classifier.cli import main

main()
