# frozen_string_literal: true

module Forkflag
  # Base class of every error forkflag raises.
  class Error < StandardError; end

  # A configuration or flags payload is invalid. The message names the value
  # and what was expected; the previous configuration stays in effect.
  class ConfigError < Error; end

  # A bug inside forkflag (a Rust panic caught at the boundary). Please report
  # it with the message.
  class InternalError < Error; end
end
