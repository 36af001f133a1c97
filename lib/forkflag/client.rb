# frozen_string_literal: true

require "securerandom"

module Forkflag
  # Evaluates feature flags, kept fresh by a native background thread.
  #
  # @example
  #   client = Forkflag::Client.new(url: "https://unleash.example.com/api", token: ENV["UNLEASH_TOKEN"],
  #                                 app_name: "shop")
  #   client.enabled?("new-checkout", { userId: "42", properties: { plan: "pro" } })
  #   client.variant("banner", { user_id: "7" }).name
  #
  # @!method enabled?(name, context = nil, default: false)
  #   Whether the flag is on for the context. Never raises for an unknown
  #   flag or a missing context field.
  #   @param name [String, Symbol]
  #   @param context [Hash, Context, nil] keys as Symbols or Strings, in
  #     snake_case or camelCase (userId, sessionId, remoteAddress,
  #     currentTime, environment, appName, properties); other top-level keys
  #     are custom fields
  #   @param default [Boolean] the answer for a flag the configuration lacks
  #   @return [Boolean]
  #   @raise [TypeError] when name or context has the wrong type
  #
  # @!method variant(name, context = nil)
  #   The variant of the flag for the context.
  #   @return [Variant] the disabled variant for an unknown or disabled flag
  #
  # @!method known?(name)
  #   Whether the loaded flags include one of this name (counts nothing).
  #   @param name [String, Symbol]
  #   @return [Boolean]
  #   @raise [TypeError] when name is not a String or Symbol
  #
  # @!method flag_names
  #   @return [Array<String>] names of the loaded flags, sorted
  #
  # @!method ready?
  #   @return [Boolean] whether the flags were confirmed current by the
  #     server (or the file) at least once; a client with only a bootstrap
  #     is always ready. Evaluations work before: from the bootstrap or the
  #     backup.
  class Client
    @registry = ObjectSpace::WeakMap.new
    @next_id = 0
    @id_lock = Mutex.new

    class << self
      # Creates a client and starts its background thread. Never blocks on
      # the network.
      #
      # @param options see {Config::OPTIONS} and the README's table
      # @raise [ArgumentError, TypeError] for an unknown or invalid option
      # @raise [ConfigError] when the bootstrap or file payload is invalid
      def new(**options)
        config = Config.new(**options)
        id = @id_lock.synchronize { @next_id += 1 }
        client = _build(config.native_options(id))
        client.__send__(:setup, config, id)
        @registry[id] = client
        client
      end

      # Every client of this process that is not closed.
      # @return [Array<Client>]
      def open_clients
        clients = []
        @registry.each_value { |c| clients << c unless c.closed? }
        clients
      end

      # Closes every client still open, all at once: at process exit (the
      # at_exit handler calls it), each bounded by its +exit_timeout+, so
      # exit waits at most the longest of them however many clients there
      # are and however the server behaves. Metrics a client has not sent
      # by then are dropped.
      #
      # @param timeout [Numeric, nil] seconds; nil: each client's +exit_timeout+
      # @return [Boolean] whether all finished in time
      def close_all(timeout: nil)
        at_once(open_clients) { |c| c.close(timeout: timeout || c.config.exit_timeout) }
      end

      # Parks every open client: for a preforking master or mold that never
      # evaluates, before it forks. The next evaluation restarts each one's
      # thread. All at once, each bounded by its +exit_timeout+: a thread
      # held up by a hung server is left to end by itself rather than hold
      # up the fork (forking beside it is safe).
      #
      # @param timeout [Numeric, nil] seconds; nil: each client's +exit_timeout+
      # @return [Boolean] whether all threads stopped in time
      def park_all(timeout: nil)
        at_once(open_clients) { |c| c.park(timeout: timeout || c.config.exit_timeout) }
      end

      # Sends every open client's metrics now, all at once (a worker about
      # to exit).
      #
      # @param timeout [Numeric, nil] seconds; nil: each client's +timeout+
      # @return [Boolean] whether all were sent in time
      def flush_all(timeout: nil)
        at_once(open_clients) { |c| c.flush(timeout: timeout || c.config.timeout) }
      end

      # Answers a client's thread that asks for the headers of its next
      # request: calls the Proc given as custom_headers (on the log thread).
      # When it raises or gives what cannot be sent, the error is logged and
      # the headers it gave last are sent again. Never raises.
      # @api private
      def reply_headers(id)
        client = @registry[id]
        client&.__send__(:reply_headers)
      rescue StandardError => e
        warn("forkflag: answering a request for headers raised #{e.class}: #{e.message}")
      end

      # Runs the block for each client, each in its own thread when there
      # are several (their waits release the GVL), so the waits overlap;
      # true when every call answered true.
      # @api private
      def at_once(clients, &block)
        return clients.all?(&block) if clients.size <= 1

        clients.map { |c| Thread.new { block.call(c) } }.map(&:value).all?
      end
    end

    # An argument not given (nil means "no bound" for wait_until_ready).
    UNSET = Object.new.freeze
    private_constant :UNSET

    # @return [Config]
    attr_reader :config

    # Waits, with the GVL released, until the flags are current (the first
    # refresh succeeded). Ctrl-C, Thread#raise and Timeout interrupt it.
    #
    # @param timeout [Numeric, nil] seconds; nil (the default, or
    #   Float::INFINITY) waits as long as it takes. Also accepted as a
    #   positional argument, the form of earlier versions.
    # @return [Boolean] whether the client is ready
    # @raise [TypeError, ArgumentError] for a timeout that is not a number of
    #   seconds (zero or more) or nil, or one given twice
    def wait_until_ready(positional_timeout = UNSET, timeout: UNSET)
      unless UNSET.equal?(positional_timeout)
        unless UNSET.equal?(timeout)
          raise ArgumentError, "wait_until_ready: give the timeout once, as timeout: (not also positionally)"
        end

        timeout = positional_timeout
      end
      timeout = nil if UNSET.equal?(timeout)
      timeout = nil if Untrusted.kind?(timeout, Float) && timeout == Float::INFINITY
      _wait_until_ready(Arguments.timeout(timeout, "wait_until_ready: timeout:", allow_nil: true))
    end

    # Sends this process's metrics now.
    #
    # @param timeout [Numeric] seconds to wait at most
    # @return [Boolean] whether they were sent in time (true when there was nothing to send)
    def flush(timeout: config.timeout)
      !_flush(Arguments.timeout(timeout, "flush: timeout:")).nil?
    end

    # Refreshes the flags now.
    #
    # @param timeout [Numeric] seconds to wait at most
    # @return [Boolean] whether the configuration is current
    def refresh(timeout: config.timeout)
      _refresh(Arguments.timeout(timeout, "refresh: timeout:"))
    end

    # Stops the background thread and keeps the flags; the next evaluation
    # (or refresh, flush) starts it again. For a preforking master or mold
    # that never evaluates.
    #
    # @param timeout [Numeric] seconds to wait for the thread at most
    # @return [Boolean] whether the thread stopped in time
    def park(timeout: config.timeout)
      _stop(Arguments.timeout(timeout, "park: timeout:"), false, false)
    end

    # Sends this process's metrics and stops the client. Evaluations keep
    # answering from the last configuration. Bounded by the timeout; calling
    # it again does nothing.
    #
    # @param timeout [Numeric] seconds to wait at most
    # @return [Boolean] whether the thread finished (and flushed) in time
    # @param flush [Boolean] false stops without sending the metrics
    #   counted since the last report (they are dropped)
    def close(timeout: config.timeout, flush: true)
      return true if @closed

      timeout = Arguments.timeout(timeout, "close: timeout:")
      flush = Arguments.boolean(flush, "close: flush:")
      @closed = true
      done = _stop(timeout, flush, true)
      Logging.drain
      Logging.closed(@id)
      done
    end

    # @return [Boolean]
    def closed?
      @closed
    end

    # Counters for operators.
    #
    # @return [Hash] state (:running, :idle, :parked, :closed), thread_alive,
    #   ready, last_refresh_at (Time or nil), refreshes, failures,
    #   polling_stopped, reported_evaluations, connection_id, flags,
    #   fork_generation, pid
    def stats
      s = _stats
      ms = s.delete(:last_refresh_ms)
      s.merge(last_refresh_at: ms.positive? ? Time.at(ms / 1000, ms % 1000, :millisecond) : nil, pid: Process.pid)
    end

    # Registers a listener for impression events of flags that have
    # impressionData enabled. The listener gets a Hash:
    # { event_type: :is_enabled | :get_variant, event_id:, feature_name:,
    #   enabled:, variant:, context: }. A listener that raises is logged and
    # does not affect the evaluation.
    #
    # @yieldparam event [Hash]
    # @return [Proc] the listener
    def on_impression(&listener)
      raise ArgumentError, "on_impression needs a block" unless listener

      @impression_listeners << listener
      self._impressions = true
      listener
    end

    # Replaces the configuration with a client-features payload.
    #
    # @param json [String]
    # @return [Integer] number of flags loaded
    # @raise [ConfigError] when the payload is invalid (the current
    #   configuration stays)
    # @raise [TypeError] when json is not a String
    def update(json)
      unless Untrusted.kind?(json, String)
        raise TypeError, "update takes a JSON String, got #{Untrusted.describe(json)}"
      end

      count = _update(json)
      log_payload_warnings
      count
    end

    def inspect
      "#<Forkflag::Client #{config.url || config.file || "bootstrap"} flags=#{_flag_count}" \
        "#{" closed" if closed?}>"
    end

    private

    def setup(config, id)
      @config = config
      @id = id
      @logger = config.logger
      @impression_listeners = []
      @closed = false
      Logging.register(id, @logger)
      ObjectSpace.define_finalizer(self, Logging.finalizer(id))
      log_payload_warnings
      _start
    end

    # The answer to reply_headers.
    def reply_headers
      headers = config.request_headers
      Forkflag.__send__(:_reply_headers, @id, headers.to_a) if headers
    rescue StandardError => e
      @logger.error("forkflag: custom_headers raised #{e.class}: #{e.message} (the last headers it gave are sent)")
      Forkflag.__send__(:_reply_headers, @id, (@last_headers || config.custom_headers).to_a)
    else
      @last_headers = headers
    end

    def log_payload_warnings
      _take_warnings.each { |problem| @logger.warn("forkflag: #{problem}") }
    end

    EVENT_TYPES = { isEnabled: :is_enabled, getVariant: :get_variant }.freeze
    private_constant :EVENT_TYPES

    # Called by the native evaluator for flags with impression data.
    def _emit_impression(event_type, name, enabled, variant, context)
      event = {
        event_type: EVENT_TYPES.fetch(event_type, event_type),
        event_id: SecureRandom.uuid,
        feature_name: name.to_s,
        enabled: enabled,
        variant: variant&.name,
        context: context.is_a?(Context) ? context.to_h : (context || {})
      }.freeze
      @impression_listeners.each do |listener|
        listener.call(event)
      rescue StandardError => e
        @logger.error("forkflag: impression listener raised #{e.class}: #{e.message}")
      end
      nil
    end
  end
end

at_exit { Forkflag::Client.close_all }
