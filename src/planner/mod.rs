//! The capacity and reagent planner (issue 4): being written.
