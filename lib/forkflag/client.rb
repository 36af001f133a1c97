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
  #   The variant of the flag for the context (counted in the metrics, as
  #   enabled? is). Never raises for an unknown flag or a missing context
  #   field.
  #   @param name [String, Symbol]
  #   @param context [Hash, Context, nil] as for {#enabled?}
  #   @return [Variant] the disabled variant (a shared frozen object) for an
  #     unknown or disabled flag, or one without variants
  #   @raise [TypeError] when name or context has the wrong type
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
    # Held while a client is made and registered, and while the event
    # thread looks one up.
    @registry_lock = Mutex.new

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
        # Built, set up and registered under the lock the event thread
        # looks clients up with: the events of the configuration it was
        # created with, queued by _build, find it there.
        client = @registry_lock.synchronize do
          built = _build(config.native_options(id))
          built.__send__(:setup, config, id)
          @registry[id] = built
        end
        client.__send__(:start)
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

      # Hands an event's data to the client it is for (on the log thread).
      # Never raises.
      # @api private
      def deliver_event(id, data)
        @registry_lock.synchronize { @registry[id] }&.__send__(:deliver_event, data)
      rescue StandardError => e
        warn("forkflag: delivering an event raised #{e.class}: #{e.message}")
      end

      # Turns events on for every open client once ActiveSupport is loaded
      # (it may be loaded after a client was made), and routes evaluations
      # through impressions when a subscriber to impression.forkflag comes
      # or goes. Called by the log thread about once a second; does work
      # only when one of the two changed.
      # @api private
      def notice_active_support
        return unless Events.active_support?

        unless @active_support_seen
          @active_support_seen = true
          open_clients.each { |client| client.__send__(:want_events) }
        end
        heard = Events.listening?(Events::IMPRESSION)
        return if heard == @impressions_heard

        @impressions_heard = heard
        open_clients.each { |client| client.__send__(:route_impressions) }
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
    #   ready, last_refresh_at (Time or nil), refreshes, failures (of the
    #   refresh since its last success), refresh_delay (seconds from one
    #   refresh attempt to the next: the interval, stretched while backing
    #   off; nil before the first attempt), polling_stopped,
    #   reported_evaluations, connection_id, flags, fork_generation, pid
    def stats
      s = _stats
      ms = s.delete(:last_refresh_ms)
      delay = s.delete(:refresh_delay_ms)
      s.merge(last_refresh_at: ms.positive? ? Time.at(ms / 1000, ms % 1000, :millisecond) : nil,
              refresh_delay: delay.positive? ? delay / 1000.0 : nil, pid: Process.pid)
    end

    # Explains the answer {#enabled?} and {#variant} give for a flag and
    # context: which strategy matched, each constraint with the context
    # value it read and its result, each segment, the rollout's bucket
    # against its percentage, the dependencies, and how the variant was
    # chosen. Counts no metrics and fires no impression.
    #
    # @param name [String, Symbol] the flag's name
    # @param context [Hash, Context, nil] as {#enabled?} takes it
    # @return [Explanation]
    # @raise [TypeError] when name is not a String or Symbol, or context is
    #   not a Hash, Context or nil
    # @raise [ArgumentError] when a context value cannot be used (as {#enabled?})
    def explain(name, context = nil)
      enabled, variant, trace = _explain(name, context)
      Explanation.new(enabled, variant, Explanation::PlainData.parse(trace))
    end

    # The loaded flags as this client evaluates them, sorted by name: each a
    # frozen Hash +{name:, enabled:, type:, project:, impression_data:,
    # strategies:, variants:, dependencies:, summary:}+. A strategy is
    # +{index:, name:, parameters:, constraints:, segments:, variants:}+
    # (+note:+ when there is more to say); a constraint +{context_name:,
    # operator:, values:, case_insensitive:, inverted:}+; a segment +{id:,
    # constraints:}+ (constraints nil when the segment is missing); a
    # variant +{name:, weight:, stickiness:, payload:, overrides:}+; a
    # dependency +{feature:, enabled:, variants:, found:}+; +summary+ is one
    # line per strategy. Described from the compiled flags: parameters in
    # the payload's words, string sets sorted, case-insensitive operands in
    # lower case.
    #
    # @return [Array<Hash>]
    def flags
      Explanation::PlainData.parse(_flags)
    end

    # One flag, described as in {#flags}.
    #
    # @param name [String, Symbol]
    # @return [Hash, nil] nil when no flag of that name is loaded
    # @raise [TypeError] when name is not a String or Symbol
    def flag(name)
      json = _flag(name)
      json && Explanation::PlainData.parse(json)
    end

    # This process's evaluations since its last metrics report, per flag
    # (what the next report sends from this process).
    #
    # @return [Hash{String => Hash}] flag name => +{yes:, no:, variants: {String => Integer}}+
    def counts
      JSON.parse(_counts).to_h do |name, c|
        [name.freeze, { yes: c["yes"], no: c["no"], variants: c["variants"].freeze }.freeze]
      end.freeze
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
      route_impressions
      listener
    end

    # Registers a listener for changes of the configuration: called, on
    # forkflag's event thread of the process, after each refresh (a poll of
    # the server, a re-read of the flags file, {#update}) that added,
    # changed or removed flags. (The configuration the client was created
    # with reaches ActiveSupport's refresh.forkflag only.) A
    # refresh that changed nothing (304, the same payload) calls nothing.
    # Listeners are kept across fork: a forked child's changes reach them in
    # the child. A listener that raises is logged to the client's logger.
    #
    # @example
    #   client.on_change do |change|
    #     Rails.logger.info("flags: +#{change.added} ~#{change.changed} -#{change.removed} (#{change.etag})")
    #   end
    # @yieldparam change [Change]
    # @return [Proc] the listener
    # @raise [ArgumentError] without a block
    def on_change(&listener)
      raise ArgumentError, "on_change needs a block" unless listener

      @change_listeners << listener
      want_events
      listener
    end

    # Registers a listener for failures of the client's background work:
    # a refresh that failed (HTTP status, timeout, connection, a payload
    # rejected: the configuration stays as it was), polling stopped
    # (401/403), metrics not sent, a backup not loaded or not written.
    # Called on forkflag's event thread of the process, for every failed
    # attempt (the log says only when failing starts, changes or ends). A
    # listener that raises is logged to the client's logger.
    #
    # @example
    #   client.on_error { |error| Sentry.capture_exception(error) if error.failures == 3 }
    # @yieldparam error [BackgroundError]
    # @return [Proc] the listener
    # @raise [ArgumentError] without a block
    def on_error(&listener)
      raise ArgumentError, "on_error needs a block" unless listener

      @error_listeners << listener
      want_events
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

    # A short description for logs and consoles: the source and the number
    # of flags, never the token or the flag names.
    #
    # @return [String] e.g. "#<Forkflag::Client config/flags.json flags=12>"
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
      @change_listeners = []
      @error_listeners = []
      @closed = false
      Logging.register(id, @logger)
      ObjectSpace.define_finalizer(self, Logging.finalizer(id))
      route_impressions
    end

    # Starts the background thread, once the client is registered.
    def start
      log_payload_warnings
      _start
    end

    # Turns the native events on (a listener was added, or ActiveSupport
    # is loaded).
    def want_events
      self._events = true
      Logging.ensure_running unless closed?
    end

    # Evaluations take the general path (which emits impressions) while
    # impression listeners are registered, or something subscribes to
    # impression.forkflag and a loaded flag asks for impressions; otherwise
    # the fast path answers.
    def route_impressions
      self._impressions = !@impression_listeners.empty? || (Events.listening?(Events::IMPRESSION) && _impression_flags?)
    end

    # Called by Logging (on the event thread) with an event's data.
    def deliver_event(data)
      event, initial = Events.build(data)
      case event
      when Change then deliver_change(event, initial)
      when BackgroundError then deliver_error(event, initial)
      end
    end

    # The configuration the client was created with (initial) reaches
    # ActiveSupport only: listeners are registered once the client exists.
    def deliver_change(change, initial)
      unchanged = change.added.empty? && change.changed.empty? && change.removed.empty?
      route_impressions unless unchanged
      Events.instrument(Events::REFRESH, { changed: !unchanged, change: (change unless unchanged), flags: change.flags,
                                           duration: change.duration, source: change.source, etag: change.etag,
                                           client: self }, @logger)
      call_listeners(@change_listeners, change, "on_change") unless unchanged || initial
    end

    def deliver_error(error, initial)
      Events.instrument(Events::ERROR, error.to_h.merge(error: error, client: self), @logger)
      call_listeners(@error_listeners, error, "on_error") unless initial
    end

    def call_listeners(listeners, event, what)
      listeners.each do |listener|
        listener.call(event)
      rescue StandardError => e
        @logger.error("forkflag: #{what} listener raised #{e.class}: #{e.message}")
      end
    end

    # Called by the native evaluator for a sampled evaluation
    # (instrument_evaluations).
    def _instrument_evaluation(name, enabled, variant)
      Events.instrument(Events::EVALUATION, { name: name.to_s, enabled: enabled, variant: variant&.name,
                                              client: self }, @logger)
      nil
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
      Events.instrument(Events::IMPRESSION, event, @logger)
      nil
    end
  end
end

at_exit { Forkflag::Client.close_all }
