# frozen_string_literal: true

# ForkSafe ships with forkflag: `require "fork_safe"` loads both.
require "forkflag"
