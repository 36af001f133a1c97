# frozen_string_literal: true

# forkflag: Unleash feature flags evaluated in Rust, kept fresh by native
# threads, correct across fork.
module Forkflag
end

require_relative "forkflag/version"
require_relative "forkflag/errors"
require_relative "forkflag/untrusted"
require_relative "forkflag/native_library"
require_relative "forkflag/arguments"
require_relative "forkflag/logging"
require_relative "forkflag/events"
require_relative "forkflag/config"
require_relative "forkflag/context"
require_relative "forkflag/strategy_context"
require_relative "forkflag/strategies"
require_relative "forkflag/variant"
require_relative "forkflag/explanation"
require_relative "forkflag/client"
require_relative "forkflag/fork_safe"
require_relative "forkflag/global"
