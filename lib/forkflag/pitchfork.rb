# frozen_string_literal: true

require_relative "server_hooks"

module Forkflag
  # Pitchfork. One line at the top of pitchfork.conf.rb:
  #
  #   require "forkflag/pitchfork"
  #
  # wires, around the hooks the file sets (they keep running, forkflag's
  # step first):
  # - before_fork (a mold before each worker, and a worker before it forks a
  #   new mold; both go on running): mark the fork;
  # - after_mold_fork (the new mold, which only forks): park its clients;
  # - after_worker_fork (the new worker, before it serves): start its own
  #   thread at once;
  # - before_worker_exit (a worker about to exit; Pitchfork's workers end
  #   with exit!, so at_exit never runs): send its metrics.
  #
  # Required outside Pitchfork, it does nothing until {Pitchfork.install}.
  module Pitchfork
    # Pitchfork hook => [step, the hook's arity].
    STEPS = {
      before_fork: [-> { ServerHooks.serving_before_fork }, 1],
      after_mold_fork: [-> { ServerHooks.mold_after_fork }, 2],
      after_worker_fork: [-> { ServerHooks.worker_boot }, 2],
      before_worker_exit: [-> { ServerHooks.worker_exit }, 2]
    }.freeze

    # Wraps the configuration's hooks when Pitchfork commits it.
    module Commit
      # Wraps the hooks, then commits as the configurator would.
      #
      # @param server [Object] the server the configuration applies to
      # @param options [Hash] the configurator's own options
      # @return [Object] what the configurator's commit! returns
      # @api private
      def commit!(server, options = {})
        Forkflag::Pitchfork.wrap_hooks(set)
        super
      end
    end

    module_function

    # Hooks forkflag into Pitchfork's configurator (done on require when
    # Pitchfork is loaded).
    # @return [Boolean] whether Pitchfork is there to hook into
    def install
      return false unless defined?(::Pitchfork::Configurator)

      ::Pitchfork::Configurator.prepend(Commit) unless ::Pitchfork::Configurator <= Commit
      true
    end

    # Chains forkflag's steps in front of a configuration's hooks
    # (idempotent).
    # @param set [Hash] Pitchfork::Configurator#set
    # @api private
    def wrap_hooks(set)
      STEPS.each do |key, (step, arity)|
        set[key] = ServerHooks.chain(set[key], arity, &step)
      end
      nil
    end
  end
end

Forkflag::Pitchfork.install
