# frozen_string_literal: true

require_relative "server_hooks"

module Forkflag
  # Unicorn 6. In unicorn.conf.rb (with `preload_app true`):
  #
  #   require "forkflag/unicorn"
  #   Forkflag::Unicorn.configure(self)
  #
  # Wires, around the hooks the file sets (before or after this line, they
  # keep running, forkflag's step first):
  # - before_fork (master, before each worker): park the master's clients;
  # - after_fork (the new worker, before it serves): start its own thread;
  # - worker exit: the worker's metrics are sent when it stops, gracefully
  #   (QUIT, through the client's at_exit) or quickly (TERM, INT: the
  #   worker's handlers send them, bounded, before Unicorn's own exit).
  module Unicorn
    # Signals on which Unicorn's worker exits at once (exit!, no at_exit).
    QUICK_EXIT_SIGNALS = %w[TERM INT].freeze

    # Wraps the configuration's hooks when Unicorn commits it.
    module Commit
      # Wraps the hooks, then commits as the configurator would.
      #
      # @param server [Object] the server the configuration applies to
      # @param options [Hash] the configurator's own options
      # @return [Object] what the configurator's commit! returns
      # @api private
      def commit!(server, options = {})
        Unicorn.wrap_hooks(set)
        super
      end
    end

    module_function

    # @param configurator [Unicorn::Configurator] `self` in unicorn.conf.rb
    # @return [Unicorn::Configurator]
    def configure(configurator)
      configurator.singleton_class.prepend(Commit) unless configurator.singleton_class <= Commit
      configurator
    end

    # Chains forkflag's steps before the before_fork and after_fork hooks in
    # a configuration's settings (idempotent).
    # @param set [Hash] Unicorn::Configurator#set
    # @api private
    def wrap_hooks(set)
      set[:before_fork] = ServerHooks.chain(set[:before_fork], 2) { ServerHooks.master_before_fork }
      set[:after_fork] = ServerHooks.chain(set[:after_fork], 2) { worker_boot }
      nil
    end

    # In a new worker: start its thread, and send its metrics before a
    # quick exit too.
    # @api private
    def worker_boot
      ServerHooks.worker_boot
      QUICK_EXIT_SIGNALS.each do |signal|
        previous = trap(signal) { nil }
        trap(signal) do
          ServerHooks.worker_exit
          if previous.respond_to?(:call)
            previous.call
          else
            trap(signal, previous || "DEFAULT")
            Process.kill(signal, Process.pid)
          end
        end
      end
    end
  end
end
