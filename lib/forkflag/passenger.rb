# frozen_string_literal: true

require_relative "server_hooks"

module Forkflag
  # Phusion Passenger (smart spawning forks application processes from a
  # preloader). Require it from the application (config.ru, or an
  # initializer):
  #
  #   require "forkflag/passenger"
  #
  # It registers, when Passenger is loaded (and does nothing otherwise):
  # - starting_worker_process: in a forked process, start its own thread;
  # - stopping_worker_process: send the process's metrics.
  module Passenger
    module_function

    # Registers the event handlers with Passenger.
    # @return [Boolean] whether Passenger is there to register with
    def install
      return false unless defined?(::PhusionPassenger) && ::PhusionPassenger.respond_to?(:on_event)
      return true if @installed

      @installed = true
      ::PhusionPassenger.on_event(:starting_worker_process) do |forked|
        ServerHooks.worker_boot if forked
      end
      ::PhusionPassenger.on_event(:stopping_worker_process) { ServerHooks.worker_exit }
      true
    end
  end
end

Forkflag::Passenger.install
