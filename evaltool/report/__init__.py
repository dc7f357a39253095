"""Report: figures, tables and the HTML/Markdown report."""
