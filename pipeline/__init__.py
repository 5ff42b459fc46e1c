"""Library code for the Best-of-Both-Worlds visual dialog pipeline.

Nothing in this package knows about DVC or the command line: stages in ``stages/`` parse
options and params, then call these functions with plain arguments or config dataclasses.

Subpackages by concept, imports one way (a lower layer never imports a higher one, not even
lazily; ``tests/test_architecture.py`` checks it, ``docs/architecture.md`` draws it):

0. base — the modules directly in ``pipeline/``: ``errors``, ``atomic``, ``progress``,
   ``config``, ``runtime``, ``plots``;
1. ``data`` — VisDial readers, tokenizer, vocabulary, ``prepare``, batches, datasets, loaders;
2. ``features`` (VGG-19 pool5), ``models`` (encoders, G, D, losses, Gumbel sampler,
   checkpoints) and ``demo`` (the generated demo dataset);
3. ``evaluation`` — metrics, retrieval evaluation, diversity, the report;
4. ``training`` — the training loop, pretraining, knowledge transfer (validation is evaluation);
5. ``chat`` — live inference: answering questions about an image or a VisDial file.
"""
