"""Emergency ordonnances: the rules that decide what may print (`rules`), the text of the paper form
(`printed`), and the one path that confirms, renders and journals an ordonnance (`issuing`).

Everything here is domain code: the CLI, the TUI and the drill reach it through `Session.issue_prescription`
and never assemble the steps themselves. docs/prescribing.md lists every rule and where it comes from.
"""
