"""The code of one lesson each: ``lessonNN_<topic>`` holds what notebook ``lessons/NN_<topic>.ipynb``
calls beyond the toolkit (its experiments, reproductions and explorer). Lesson modules import the
toolkit (``vgcourse``) and earlier lessons' modules; the toolkit never imports them.

A lesson may have several modules, one concept each (``lesson02_shrinkage``, ``lesson02_seed_experiment``,
``lesson02_latch``, ...). Import one in a notebook as
``from vgcourse.lessons import lesson02_shrinkage as shrinkage``.
"""
