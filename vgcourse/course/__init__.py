"""The course tooling: the ``vgcourse`` command (:mod:`.cli`), the nbgrader workflow for instructors
(:mod:`.instructor`), notebook tools (:mod:`.notebooks`) and exercise feedback (:mod:`.checks`).
It imports neither lesson modules nor training code.
"""
