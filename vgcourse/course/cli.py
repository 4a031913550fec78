"""The ``vgcourse`` command: the learner edition, and the instructor workflow on top of nbgrader.

vgcourse learn DIR [LESSON ...] [--force]  write the learner edition into DIR (solutions folded away)
vgcourse init COURSE [LESSON ...]          create an nbgrader course folder from lessons/ (all by default)
vgcourse assign COURSE [LESSON ...]        write student versions to COURSE/release/<lesson>/
vgcourse grade COURSE LESSON SUBMISSIONS   autograde SUBMISSIONS/<student>/<lesson>.ipynb, with feedback
vgcourse export COURSE grades.csv          every grade as CSV
vgcourse lessons                           list the lessons
"""

from __future__ import annotations

import argparse
import sys

from . import instructor, learner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vgcourse",
        description="Open the vgcourse lessons as a learner, or assign and autograde them (nbgrader).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "learn",
        help="write the learner edition of the lessons into a folder",
        description="Write the learner edition into DIR: exercises as stubs, each solution in a "
        "collapsed 'Show a solution' block, hidden tests removed. Lessons you have changed are "
        "kept; a newer version of one is written beside it as NN_name.updated.ipynb.",
    )
    p.add_argument("folder", metavar="DIR")
    p.add_argument("lessons", nargs="*", help="lesson names or numbers (default: all)")
    p.add_argument("--force", action="store_true", help="overwrite lessons you have changed")
    p = sub.add_parser("init", help="create an nbgrader course folder from the lessons")
    p.add_argument("course")
    p.add_argument("lessons", nargs="*", help="lesson names or numbers (default: all)")
    p.add_argument("--course-id", default="vgcourse")
    p = sub.add_parser("assign", help="generate the student versions")
    p.add_argument("course")
    p.add_argument("lessons", nargs="*")
    p = sub.add_parser("grade", help="autograde a folder of submissions and generate feedback")
    p.add_argument("course")
    p.add_argument("lesson")
    p.add_argument(
        "submissions", help="folder with one sub-folder per student holding <lesson>.ipynb"
    )
    p.add_argument("--no-feedback", action="store_true")
    p = sub.add_parser("export", help="export all grades to CSV")
    p.add_argument("course")
    p.add_argument("to")
    sub.add_parser("lessons", help="list the lessons")
    args = parser.parse_args(argv)
    try:
        if args.command == "learn":
            report = learner.write_learner_edition(args.folder, args.lessons, force=args.force)
            for name, status in report.items():
                print(f"{name}: {status}")
            print(f"learner edition in {args.folder}; open it with: jupyter lab {args.folder}")
        elif args.command == "lessons":
            print("\n".join(instructor.lesson_names()))
        elif args.command == "init":
            course = instructor.init_course(args.course, args.lessons, course_id=args.course_id)
            print(f"course folder ready: {course}")
        elif args.command == "assign":
            for path in instructor.assign(args.course, args.lessons or None):
                print(f"released {path}")
        elif args.command == "grade":
            scores = instructor.grade(
                args.course, args.lesson, args.submissions, feedback=not args.no_feedback
            )
            total = instructor.max_score(args.course, args.lesson)
            auto = instructor.autograded_scores(args.course, args.lesson)
            for student, score in sorted(scores.items()):
                got, available = auto.get(student, (float("nan"), float("nan")))
                print(
                    f"{student}: {score:g} / {total:g} (autograded cells: {got:g} / {available:g}; "
                    "written answers wait for manual grading in `nbgrader formgrader`)"
                )
        else:
            print(f"grades written to {instructor.export_grades(args.course, args.to)}")
    except (ValueError, RuntimeError) as err:
        print(f"vgcourse: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
