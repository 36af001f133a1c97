# frozen_string_literal: true

require "json"
require "forkflag"

module Forkflag
  # Per-example flag overrides for RSpec, over a local test source: no
  # network, no server.
  #
  # `require "forkflag/rspec"` (in spec_helper.rb or rails_helper.rb) makes
  # {Forkflag.client} a client built from a bootstrap payload for the whole
  # run (the flags file {Forkflag::RSpec.flags_file} names, else no flags).
  # Overrides replace flags of that payload through {Client#update}; after
  # each example the payload is restored. The configuration lives in the
  # client's snapshot, so a process forked inside an example (Parallel, a
  # server under test) sees the overrides, and so do suites run by forked
  # workers or through `spring rspec`.
  #
  # @example Metadata
  #   it "shows the new checkout", flags: { "new-checkout" => true } do ... end
  #
  # @example Block (restored when the block ends) or for the rest of the example
  #   with_flags("new-checkout" => false) { ... }
  #   with_flags("banner" => { variant: "blue", payload: { color: "blue" } })
  #
  # A flag's value is true or false (on or off for everyone), a String (that
  # variant, flag on), or a Hash with :enabled (default true), :variant and
  # :payload: a String (a string payload), a Hash of :type and :value, or any
  # other JSON-able value (a json payload).
  module RSpec
    # The flags the test client starts from when there is no flags file: none.
    EMPTY_PAYLOAD = JSON.generate(version: 2, features: []).freeze

    @client = nil
    @base = nil
    @layers = []
    @flags_file = nil

    class << self
      # The flags file the test client starts from (client-features JSON):
      # set it, or FORKFLAG_TEST_FLAGS names it, or a Rails app's
      # config/flags.json when there is one. Read once, at {install}.
      # @param file [String, Pathname, nil]
      # @raise [TypeError] for anything else
      def flags_file=(file)
        @flags_file = Arguments.path(file, "Forkflag::RSpec.flags_file=")
      end

      # @return [String, nil]
      def flags_file
        @flags_file || ENV.fetch("FORKFLAG_TEST_FLAGS", nil)&.then { |f| f.empty? ? nil : f } || rails_flags_file
      end

      # The test client (built on first use).
      # @return [Client]
      def client
        @client || install
      end

      # Builds the test client and makes it {Forkflag.client}. An
      # application client built earlier (by the Railtie, from FORKFLAG_*
      # variables) is closed: the suite makes no network calls.
      #
      # @return [Client]
      def install
        return @client if @client && !@client.closed?

        @base = base_payload
        @client = Client.new(bootstrap: @base, logger: Logger.new($stderr, level: Logger::WARN, progname: "forkflag"))
        previous = Forkflag.current_client
        Forkflag.client = @client
        previous.close(timeout: 1) if previous && !previous.equal?(@client)
        @client
      end

      # Applies overrides on top of those in force.
      #
      # @param flags [Hash{String, Symbol => Boolean, String, Hash}]
      # @return [Integer] the depth to give {restore} to undo them
      # @raise [TypeError, ArgumentError] naming the flag whose override is wrong
      def apply(flags)
        Arguments.hash_value(flags, "with_flags", "a Hash of flag name => true, false, a variant name or a Hash")
        features = {}
        flags.each_pair do |name, value|
          name = flag_name(name)
          features[name] = feature(name, value)
        end
        depth = @layers.size
        @layers << features
        load_layers
        depth
      end

      # Undoes the overrides applied since depth (0: all of them).
      # @param depth [Integer] what {apply} returned
      def restore(depth = 0)
        unless Untrusted.kind?(depth, Integer) && !depth.negative?
          raise TypeError, "Forkflag::RSpec.restore takes a depth that apply returned (an Integer >= 0), " \
                           "got #{Untrusted.describe(depth)}"
        end
        return if @layers.size <= depth

        @layers.slice!(depth..)
        load_layers
      end

      # The overrides in force: name => the generated feature.
      # @return [Hash{String => Hash}]
      def overrides
        @layers.reduce({}) { |all, layer| all.merge(layer) }
      end

      private

      def load_layers
        client.update(payload_with(overrides))
      end

      def payload_with(features)
        base = JSON.parse(@base)
        kept = Array(base["features"]).reject { |f| features.key?(f["name"]) }
        base["features"] = kept + features.values
        JSON.generate(base)
      end

      def base_payload
        file = flags_file
        return EMPTY_PAYLOAD unless file

        text = File.read(file)
        JSON.parse(text)
        text
      rescue SystemCallError, JSON::ParserError => e
        raise ConfigError, "forkflag/rspec: cannot use #{file} as the test flags (#{e.class}: #{e.message}); " \
                           "set Forkflag::RSpec.flags_file to a client-features JSON file"
      end

      def rails_flags_file
        return nil unless defined?(::Rails) && ::Rails.respond_to?(:root) && ::Rails.root

        file = ::Rails.root.join("config", "flags.json").to_s
        File.file?(file) ? file : nil
      end

      def flag_name(name)
        Arguments.name(name, "with_flags: a flag name")
      end

      def feature(name, value)
        Feature.build(name, value)
      end
    end

    # Client-features entries for overrides.
    # @api private
    module Feature
      FLAG_KEYS = %i[enabled variant payload].freeze
      FLAG_KEY_NAMES = FLAG_KEYS.to_h { |key| [key.name, key] }.freeze
      # Deepest JSON payload accepted (JSON.generate's own limit).
      MAX_DEPTH = 100

      module_function

      def build(name, value)
        spec = flag_spec(name, value)
        strategy = { name: "default", parameters: {}, constraints: [] }
        if spec[:variant]
          variant = { name: spec[:variant], weight: 1000, weightType: "variable", stickiness: "default" }
          variant[:payload] = payload_of(name, spec[:payload]) unless nil.equal?(spec[:payload])
          strategy[:variants] = [variant]
        end
        { name: name, type: "release", enabled: spec[:enabled], strategies: [strategy], impressionData: false }
      end

      def flag_spec(name, value)
        case value
        when true, false then { enabled: value }
        when String, Symbol then { enabled: true, variant: variant_name(name, value) }
        when Hash then hash_spec(name, value)
        else
          raise ArgumentError, "with_flags: #{name.inspect} must be true, false, a variant name or a Hash of " \
                               ":enabled, :variant, :payload; got #{Untrusted.describe(value)}"
        end
      end

      def hash_spec(name, value)
        spec = {}
        value.each_pair { |key, v| spec[flag_key(name, key)] = v }
        spec[:variant] = variant_name(name, spec[:variant]) unless nil.equal?(spec[:variant])
        if !nil.equal?(spec[:payload]) && nil.equal?(spec[:variant])
          raise ArgumentError, "with_flags: #{name.inspect} has a payload but no variant"
        end

        spec.merge(enabled: spec.fetch(:enabled, true) ? true : false)
      end

      def flag_key(name, key)
        found = case key
                when Symbol then key
                when String then FLAG_KEY_NAMES[String.new(key)]
                end
        return found if FLAG_KEYS.include?(found)

        raise ArgumentError, "with_flags: #{name.inspect} has an unknown key #{Untrusted.describe(key)}; " \
                             "use #{FLAG_KEYS.inspect}"
      end

      def variant_name(name, value)
        Arguments.name(value, "with_flags: #{name.inspect} variant")
      end

      def payload_of(name, payload)
        what = "with_flags: #{name.inspect} payload"
        case payload
        when String then { type: "string", value: Arguments.string(payload, what) }
        when Integer, Float then { type: "number", value: payload.to_s }
        when Hash
          typed = typed_payload(payload, what)
          typed || { type: "json", value: json(payload, what) }
        else { type: "json", value: json(payload, what) }
        end
      end

      # { type:, value: } given as such (Symbol or String keys), else nil.
      def typed_payload(payload, what)
        type, value = %i[type value].map { |key| payload.fetch(key) { payload.fetch(key.name, nil) } }
        return nil unless payload.size == 2 && type && value

        { type: Arguments.name(type, "#{what} type"), value: Arguments.text(value, "#{what} value") }
      end

      # The payload as JSON text; only Hashes, Arrays and objects with
      # to_json, at most MAX_DEPTH deep.
      def json(payload, what)
        check_json(payload, what, 0)
        JSON.generate(payload)
      rescue JSON::JSONError => e
        raise ArgumentError, "#{what} cannot be written as JSON: #{e.message}"
      end

      def check_json(value, what, depth)
        raise ArgumentError, "#{what} is nested deeper than #{MAX_DEPTH} levels" if depth > MAX_DEPTH

        case value
        when Hash then value.each_pair { |k, v| [k, v].each { |x| check_json(x, what, depth + 1) } }
        when Array then value.each { |v| check_json(v, what, depth + 1) }
        else check_json_leaf(value, what)
        end
        nil
      end

      def check_json_leaf(value, what)
        return if Untrusted.responds_to?(value, :to_json)

        raise ArgumentError, "#{what} cannot be written as JSON: it holds #{Untrusted.describe(value)}"
      end
    end

    # Included in every example group.
    module Helpers
      # Overrides flags: until the block ends (block form), or for the rest
      # of the example.
      #
      # @param flags [Hash] see {Forkflag::RSpec}
      # @return the block's value, or the test client without a block
      def with_flags(flags)
        depth = Forkflag::RSpec.apply(flags)
        return Forkflag::RSpec.client unless block_given?

        begin
          yield
        ensure
          Forkflag::RSpec.restore(depth)
        end
      end
    end
  end
end

RSpec.configure do |config|
  config.include Forkflag::RSpec::Helpers
  config.before(:suite) { Forkflag::RSpec.install }
  config.around(:each) do |example|
    Forkflag::RSpec.install
    Forkflag::RSpec.apply(example.metadata[:flags]) if example.metadata[:flags]
    example.run
  ensure
    Forkflag::RSpec.restore(0)
  end
end
