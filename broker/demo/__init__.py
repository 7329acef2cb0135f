"""``msht demo``: the whole exchange, end to end, on the local Kafka.

Modules: :mod:`broker.demo.workspace` (state folder, keys, run-unique topic names),
:mod:`broker.demo.story` (who sends which example file, and what must follow),
:mod:`broker.demo.watch` (topic tails and the partners' subscribers),
:mod:`broker.demo.observed` (what a run saw, and what is missing — pure),
:mod:`broker.demo.summary` (the closing tables), :mod:`broker.demo.runner` (the run).
"""
