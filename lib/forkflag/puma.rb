# frozen_string_literal: true

require_relative "server_hooks"

module Forkflag
  # Puma 5.6 cluster mode. In config/puma.rb, either the plugin:
  #
  #   plugin :forkflag
  #
  # or, equivalently, the helper:
  #
  #   require "forkflag/puma"
  #   Forkflag::Puma.configure(self)
  #
  # Either wires:
  # - before_fork (master, once at boot): park the master's clients; the
  #   master never evaluates, and its snapshot is what workers start from;
  # - on_worker_boot (each worker, before serving): start the worker's own
  #   thread at once;
  # - on_refork (worker 0 under fork_worker, before it forks the others; it
  #   goes on serving afterwards): mark the fork, keep its threads;
  # - on_worker_shutdown (each worker, after its last request): send the
  #   worker's metrics.
  #
  # Hooks the configuration already has keep running; forkflag's run after
  # them.
  module Puma
    # Puma option key => what runs there.
    HOOKS = {
      before_fork: -> { ServerHooks.master_before_fork },
      before_worker_boot: lambda { |index = nil|
        Puma.worker_index = index
        ServerHooks.worker_boot
      },
      before_refork: -> { ServerHooks.serving_before_fork },
      before_worker_shutdown: -> { ServerHooks.worker_exit }
    }.freeze

    class << self
      # The index Puma gave this worker (0, 1, ...), recorded by the worker
      # boot hook; nil in a process Puma did not boot as a worker. The
      # status page ({Forkflag::Web}) shows it.
      # @return [Integer, nil]
      attr_accessor :worker_index
    end

    module_function

    # Wires the hooks through Puma's configuration DSL (call it in puma.rb
    # with `self`).
    # @param dsl [Puma::DSL]
    # @return [Puma::DSL]
    def configure(dsl)
      dsl.before_fork { HOOKS[:before_fork].call }
      dsl.on_worker_boot { |index| HOOKS[:before_worker_boot].call(index) }
      dsl.on_refork { HOOKS[:before_refork].call }
      dsl.on_worker_shutdown { HOOKS[:before_worker_shutdown].call }
      dsl
    end

    # Adds the hooks to a loaded configuration's options (what the plugin
    # does when Puma starts it). Adding them twice does nothing more.
    # @param options [Puma::UserFileDefaultOptions]
    # @return [void]
    def install(options)
      layer = options.default_options
      HOOKS.each do |key, action|
        hooks = Array(layer[key])
        next if hooks.any? { |hook| hook.equal?(action) || hook.instance_variable_get(:@forkflag) }

        layer[key] = hooks + [tag(action)]
      end
      nil
    end

    # A hook Puma calls with one argument (the worker index, or nil).
    def tag(action)
      hook = proc { |index| action.parameters.empty? ? action.call : action.call(index) }
      hook.instance_variable_set(:@forkflag, true)
      hook
    end
    private_class_method :tag
  end
end
