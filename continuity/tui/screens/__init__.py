"""The screens of the Continuity app, one module per screen."""
