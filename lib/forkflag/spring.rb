# frozen_string_literal: true

module Forkflag
  # Spring (Rails' preloader) forks a command process from its preloaded
  # application for every `spring rails ...` or `spring rspec`. Forks are
  # detected automatically; this hook also runs ForkSafe's after_fork from
  # Spring's own callback (idempotent: nothing runs twice for one fork), so
  # it holds with automatic detection turned off too.
  #
  # The Railtie installs it when Spring is loaded; `require "forkflag/spring"`
  # then {Forkflag::Spring.install} does it by hand.
  module Spring
    @installed = false

    class << self
      # Adds the after_fork callback to Spring once.
      #
      # @return [Boolean] whether it is installed (false: Spring is not loaded)
      def install
        return true if @installed
        return false unless defined?(::Spring) && ::Spring.respond_to?(:after_fork)

        ::Spring.after_fork { ForkSafe.after_fork if defined?(::ForkSafe) }
        @installed = true
      end

      # Whether {install} added the callback.
      def installed?
        @installed
      end
    end
  end
end
