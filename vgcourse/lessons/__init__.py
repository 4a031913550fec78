"""The code of one lesson each: ``lessonNN_<topic>`` holds what notebook ``lessons/NN_<topic>.ipynb``
calls beyond the toolkit (its experiments, reproductions and explorer). Lesson modules import the
toolkit (``vgcourse``) and earlier lessons' modules; the toolkit never imports them.

Import one in a notebook as ``from vgcourse.lessons import lesson02_shrinkage as shrinkage``.
"""
