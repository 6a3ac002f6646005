"""Curation efficacy: the selector x budget x seed matrix and its paired report (see ``cli`` and ``report``)."""
