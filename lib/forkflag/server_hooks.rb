# frozen_string_literal: true

require_relative "../forkflag"

module Forkflag
  # What every preforking server's hooks do, in one place; the per-server
  # files (forkflag/puma, forkflag/unicorn, forkflag/pitchfork,
  # forkflag/passenger) only say which hook runs which step.
  #
  # All of them are safe to call on top of automatic fork detection: the
  # ForkSafe hooks are idempotent per fork, parking a parked client does
  # nothing, and starting a running one does nothing.
  module ServerHooks
    WRAPPED = ObjectSpace::WeakMap.new
    private_constant :WRAPPED

    module_function

    # In a master (or mold) that is about to fork and never evaluates:
    # marks the fork and parks every client (threads stop, flags stay).
    # @return [void]
    def master_before_fork
      ForkSafe.before_fork
      Client.park_all
      nil
    end

    # In a process about to fork that goes on serving (Puma's worker 0 under
    # fork_worker, a Pitchfork worker spawning a mold): marks the fork only.
    # @return [void]
    def serving_before_fork
      ForkSafe.before_fork
      nil
    end

    # In a mold just forked: it only forks workers, so its clients stay
    # parked.
    # @return [void]
    def mold_after_fork
      ForkSafe.after_fork
      Client.park_all
      nil
    end

    # In a worker just forked, before it serves: lets go of the parent's
    # threads and starts this process's own at once (the background thread
    # and the Ruby thread that delivers its log messages), so no request
    # pays for a thread start and the first refresh (a conditional GET) is
    # under way before the first request. Never waits on the network.
    # @return [void]
    def worker_boot
      ForkSafe.after_fork
      Client.open_clients.each do |client|
        client.__send__(:_start)
        client.refresh(timeout: 0)
      end
      nil
    end

    # A server's hook (a callable taking `arity` arguments, or nothing) with
    # `step` run before it. Idempotent: a hook this returned is returned as
    # it is, so configuring twice does not run a step twice.
    # @param hook [#call, nil, Object] what the server has (anything that is
    #   not callable counts as no hook)
    # @param arity [Integer] 1 or 2: the arguments the server passes
    # @return [Proc]
    # @api private
    def chain(hook, arity, &step)
      return hook if hook.is_a?(Proc) && WRAPPED.key?(hook)

      wrapped =
        if arity == 1
          lambda do |server|
            step.call
            hook.call(server) if hook.respond_to?(:call)
          end
        else
          lambda do |server, other|
            step.call
            hook.call(server, other) if hook.respond_to?(:call)
          end
        end
      WRAPPED[wrapped] = true
      wrapped
    end

    # In a worker about to exit: sends its metrics now, every client at
    # once, each bounded by its +exit_timeout+ (as at process exit).
    # @param timeout [Numeric, nil] seconds to wait at most; nil: each
    #   client's +exit_timeout+
    # @return [Boolean] whether all were sent in time
    # @raise [TypeError, ArgumentError] for a timeout that is not a number of
    #   seconds (zero or more)
    def worker_exit(timeout: nil)
      timeout = Arguments.timeout(timeout, "worker_exit: timeout:", allow_nil: true)
      Client.at_once(Client.open_clients) { |c| c.flush(timeout: timeout || c.config.exit_timeout) }
    end
  end
end
