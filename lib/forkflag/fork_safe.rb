# frozen_string_literal: true

# ForkSafe: the lifecycle of objects that must behave across fork.
#
# Forks are detected automatically: `Process._fork` is prepended (it runs for
# Kernel#fork, Process.fork and IO.popen("-")), and a native
# `pthread_atfork` handler counts every fork, even one Ruby does not see
# (Process.daemon, a C extension), in a fork generation that forkflag checks
# with one atomic load before each evaluation.
#
# The explicit hooks are for servers' configuration files. They are
# idempotent: called on top of automatic detection, nothing runs twice for
# the same fork.
#
# @example Puma (config/puma.rb)
#   before_fork { ForkSafe.before_fork }
#   on_worker_boot { ForkSafe.after_fork }
#
# @example Any object
#   class Pool
#     def after_fork = reconnect!
#   end
#   ForkSafe.register(pool)
module ForkSafe
  # The hooks a registered object may respond to, in the order of a fork.
  HOOKS = %i[before_fork after_fork after_fork_parent].freeze

  @objects = ObjectSpace::WeakMap.new
  @automatic = ENV.fetch("FORKSAFE_AUTOMATIC", "1") != "0"
  @pending_fork = nil
  @after_fork_done = [Process.pid, Forkflag.__send__(:_fork_generation)]

  class << self
    # Adds an object to the fork lifecycle. It is held weakly, and gets each
    # of before_fork, after_fork (in the child) and after_fork_parent that
    # it responds to.
    #
    # @return [Object] the object
    # @raise [ArgumentError] when it responds to none of the hooks
    def register(object)
      unless HOOKS.any? { |hook| Forkflag::Untrusted.responds_to?(object, hook) }
        raise ArgumentError, "ForkSafe.register needs an object responding to #{HOOKS.join(", ")}; " \
                             "got #{Forkflag::Untrusted.describe(object)}"
      end
      # The object is the value too: before Ruby 3.3, WeakMap iteration
      # checks only the values for liveness and yields the key of an entry
      # whose value is an immediate (true) even when the key is already
      # garbage, awaiting its finalizer; calling a method on it crashes the
      # VM. Only values are ever read back (see #registered).
      @objects[object] = object
      object
    end

    # Removes an object from the fork lifecycle. Found by identity: no
    # method of it, or of another registered object, is called.
    def unregister(object)
      if @objects.respond_to?(:delete)
        @objects.delete(object)
      elsif @objects.key?(object)
        # ObjectSpace::WeakMap#delete arrived in Ruby 3.3: before, the
        # entry stays, with nil for its value (skipped by #registered),
        # until its key is collected.
        @objects[object] = nil
      end
      object
    end

    # Whether forks are detected without explicit hooks (default true;
    # FORKSAFE_AUTOMATIC=0 turns it off).
    def automatic?
      @automatic
    end

    # Turns automatic detection on or off. Off, only the explicit hooks run
    # the objects' callbacks; forkflag's clients still notice a fork on
    # their next evaluation.
    # @param on [Boolean]
    # @raise [TypeError] unless true or false
    def automatic=(on)
      @automatic = Forkflag::Arguments.boolean(on, "ForkSafe.automatic=")
    end

    # Call before forking (in the parent). Runs once per fork.
    # @return [Boolean] whether the callbacks ran (false: already done)
    def before_fork
      marker = [Process.pid, Forkflag.__send__(:_fork_generation)]
      return false if @pending_fork == marker

      @pending_fork = marker
      each_object(:before_fork)
      true
    end

    # Call in the child after a fork. Runs once per fork.
    # @return [Boolean] whether the callbacks ran
    def after_fork
      marker = [Process.pid, Forkflag.__send__(:_fork_generation)]
      return false if @after_fork_done == marker

      @after_fork_done = marker
      @pending_fork = nil
      each_object(:after_fork)
      true
    end

    # Call in the parent after a fork. Runs once per before_fork.
    # @return [Boolean] whether the callbacks ran
    def after_fork_parent
      return false unless @pending_fork

      @pending_fork = nil
      each_object(:after_fork_parent)
      true
    end

    # The fork generation of this process: forks between the process that
    # loaded forkflag and this one.
    def generation
      Forkflag.__send__(:_fork_generation)
    end

    # For operators.
    #
    # @return [Hash] pid, fork generation, forkflag threads alive in this
    #   process, clients (open ones) and the last refresh of any of them
    def stats
      client_stats = Forkflag::Client.open_clients.map(&:stats)
      {
        pid: Process.pid,
        generation: generation,
        threads_alive: native_threads,
        clients: client_stats.size,
        last_refresh_at: client_stats.filter_map { |s| s[:last_refresh_at] }.max
      }
    end

    # Names of forkflag's native threads alive in this process.
    # @api private
    def native_threads
      Dir.children("/proc/self/task").count do |tid|
        File.read("/proc/self/task/#{tid}/comm").start_with?("forkflag-worker")
      rescue SystemCallError
        false
      end
    end

    private

    # The registered objects alive now (a copy: callbacks may register
    # more). Values only: they are checked for liveness (see #register);
    # nil marks an unregistered one (see #unregister).
    def registered
      objects = []
      @objects.each_value { |object| objects << object unless nil.equal?(object) }
      objects
    end

    def each_object(hook)
      registered.select { |o| Forkflag::Untrusted.responds_to?(o, hook) }.each do |object|
        object.__send__(hook)
      rescue StandardError => e
        warn("ForkSafe: #{Forkflag::Untrusted.class_name(object)}##{hook} raised #{e.class}: #{e.message}")
      end
    end
  end

  # Runs the lifecycle around every fork Ruby makes.
  module ProcessHook
    # Process._fork (prepended on Process's singleton class; Ruby calls it
    # for every fork it makes): the hooks around Ruby's own _fork.
    #
    # @return [Integer] the child's pid in the parent, 0 in the child
    # @api private
    def _fork
      return super unless ForkSafe.automatic?

      ForkSafe.before_fork
      pid = super
      if pid.zero?
        ForkSafe.after_fork
      else
        ForkSafe.after_fork_parent
      end
      pid
    end
  end

  Process.singleton_class.prepend(ProcessHook)
end
