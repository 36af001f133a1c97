# frozen_string_literal: true

# The official Unleash Ruby SDK's API (the `unleash` gem, 6.x), backed by
# forkflag: `Unleash.configure`, `Unleash::Client`, `Unleash::Context`,
# `Unleash::Variant`, `Unleash::Strategies`, `Unleash::Bootstrap::Configuration`.
# An application written for the official SDK switches with its Gemfile
# line:
#
#   gem "forkflag", require: "forkflag/unleash"
#
# after which its own `require "unleash"` and `require "unleash/context"`
# lines are no-ops. `require "forkflag"` alone defines no `Unleash`.
# docs/MIGRATING.md lists what differs from the official SDK, and why.

if defined?(Unleash) && !defined?(Unleash::FORKFLAG)
  raise LoadError, "forkflag/unleash: the official unleash gem is already loaded (Unleash is defined); " \
                   "forkflag/unleash replaces it: remove the unleash gem (or its require) and keep " \
                   "gem \"forkflag\", require: \"forkflag/unleash\""
end
# Both gems in one bundle: whichever loads second would reopen the other's
# classes, so neither is allowed to.
if Gem.respond_to?(:loaded_specs) && Gem.loaded_specs.key?("unleash")
  raise LoadError, "both the unleash gem and forkflag's compatibility layer (forkflag/unleash) are in this " \
                   "bundle; keep one: remove the unleash gem to use forkflag/unleash"
end

require "forkflag"
# Under Passenger, each application process sends its metrics when it
# stops (the official README's Passenger recipe has no hook for it); it
# does nothing elsewhere.
require "forkflag/passenger"

# The official Unleash SDK's API, backed by forkflag.
module Unleash
  # Marks this Unleash as forkflag's (the official gem's files refuse to
  # mix with it, and it with them).
  FORKFLAG = Forkflag::VERSION

  # The version of the official SDK whose public API this layer follows.
  VERSION = "6.6.0"

  # The version of the Unleash client specification the engine implements.
  CLIENT_SPECIFICATION_VERSION = "5.2.0"

  # Digits of fractional seconds in timestamps (as the official SDK).
  TIME_RESOLUTION = 3
end

require_relative "unleash/configuration"
require_relative "unleash/context"
require_relative "unleash/variant"
require_relative "unleash/strategies"
require_relative "unleash/bootstrap"
require_relative "unleash/client"

Unleash.configuration ||= Unleash::Configuration.new
