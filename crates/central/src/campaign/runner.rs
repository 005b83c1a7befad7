//! Carries out the campaigns' commands.
