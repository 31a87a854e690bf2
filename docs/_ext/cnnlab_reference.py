"""The ``{reference-table}`` directive: a table that ``shared.tools.reference`` generates from the code when the site
is built, so the flags, exit statuses, tolerances and architectures on the pages are the code's own.

    ```{reference-table} exit-statuses
    ```
"""

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


class ReferenceTable(SphinxDirective):
    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        from shared.tools.reference import table

        try:
            markdown = table(self.arguments[0])
        except ValueError as error:
            raise self.error(str(error)) from None
        container = nodes.container(classes=["reference-table"])
        # MyST parses nested content as Markdown, so the generated table renders as a page's own table would
        self.state.nested_parse(StringList(markdown.splitlines(), source=f"<{self.arguments[0]}>"),
                                self.content_offset, container)
        return [container]


def setup(app):
    app.add_directive("reference-table", ReferenceTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
