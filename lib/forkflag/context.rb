# frozen_string_literal: true

module Forkflag
  # An evaluation context converted once, to pass to many evaluations (for
  # example one per request). A plain Hash works too; a Context saves the
  # conversion on every call.
  #
  # @example
  #   ctx = Forkflag::Context.new(user_id: "42", remote_address: "10.0.0.1",
  #                               properties: { plan: "pro" })
  #   client.enabled?("new-checkout", ctx)
  #
  # The field readers are defined by the native library:
  #
  # @!method user_id
  #   @return [String, nil] the user id, as text
  # @!method session_id
  #   @return [String, nil] the session id, as text
  # @!method remote_address
  #   @return [String, nil] the remote address, as text
  # @!method environment
  #   @return [String, nil] the environment, as text (nil: the client's)
  # @!method app_name
  #   @return [String, nil] the application name, as text (nil: the client's)
  # @!method properties
  #   @return [Hash{String => String}] the custom fields as text, in a new
  #     frozen Hash (empty when there are none)
  class Context
    # @!parse
    #   # The standard fields' keys, in each spelling, => their snake_case
    #   # keyword, e.g. { user_id: :user_id, userId: :user_id, ...,
    #   # properties: :properties } (frozen; defined by the native library
    #   # from the core's table of context keys).
    #   KEYS = {}.freeze

    # The same, by the field's name as a String.
    KEYS_BY_NAME = KEYS.transform_keys(&:name).freeze
    private_constant :KEYS_BY_NAME

    class << self
      # @param fields [Hash, nil] fields with Symbol or String keys, in
      #   snake_case or camelCase; any other key is a custom field, as in a
      #   Hash context (one under properties: wins over a top-level one of
      #   the same name)
      # @param keywords fields as keywords
      # @option keywords [String] :user_id
      # @option keywords [String] :session_id
      # @option keywords [String] :remote_address
      # @option keywords [String] :environment
      # @option keywords [String] :app_name
      # @option keywords [Time, String] :current_time a Time or an ISO-8601 String
      # @option keywords [Hash] :properties custom fields
      #   (fields other than current_time and properties may be any
      #   object: they are read through to_s, and one whose to_s raises is
      #   absent)
      # @raise [ArgumentError] for an unreadable current_time, or a custom
      #   field name that is not valid UTF-8
      # @raise [TypeError] for fields that are not a Hash, a field name that
      #   is not a Symbol or String, properties that are not a Hash, or a
      #   property name that is not a Symbol or String
      def new(fields = nil, **keywords)
        unless nil.equal?(fields) || Untrusted.kind?(fields, Hash)
          raise TypeError, "Forkflag::Context.new takes a Hash or keywords, " \
                           "got #{Untrusted.describe(fields)}"
        end

        standard = {}
        custom = {}
        [fields || {}, keywords].each { |hash| split(hash, standard, custom) }
        standard[:properties] = custom.merge(standard[:properties] || {}) unless custom.empty?
        _build(standard)
      end

      private

      # Sorts a Hash's fields into standard (canonical keyword => value) and
      # custom (name => value) ones, in new plain Hashes (never the caller's
      # Hash: its default proc or its subclass's methods are not called).
      def split(hash, standard, custom)
        hash.each do |key, value|
          name = field_name(key)
          if name.nil?
            custom[Arguments.name(key, "a custom context field name")] = value
          else
            check_properties(value) if name == :properties
            standard[name] = value
          end
        end
      end

      # The canonical keyword of a standard field; nil for a custom one.
      def field_name(key)
        case key
        when Symbol then KEYS[key]
        when String then KEYS_BY_NAME[String.new(key)]
        else raise TypeError, "a context field name must be a Symbol or a String, got #{Untrusted.describe(key)}"
        end
      end

      def check_properties(properties)
        return if nil.equal?(properties)

        Arguments.hash_value(properties, "the context field properties", "a Hash of custom fields")
        properties.each_key do |key|
          next if Untrusted.kind?(key, Symbol) || Untrusted.kind?(key, String)

          raise TypeError, "property names must be Strings or Symbols, got #{Untrusted.describe(key)}"
        end
      end
    end

    # @return [Time, nil]
    def current_time
      ms = _current_time_ms
      ms && Time.at(ms / 1000, ms % 1000, :millisecond).utc
    end

    # @return [Hash] the fields that are set
    def to_h
      {
        user_id: user_id, session_id: session_id, remote_address: remote_address,
        environment: environment, app_name: app_name, current_time: current_time,
        properties: properties.empty? ? nil : properties
      }.compact
    end

    # Contexts are equal when their fields are (also as Hash keys: {#eql?}).
    #
    # @param other [Object]
    # @return [Boolean]
    def ==(other)
      other.is_a?(Context) && other.to_h == to_h
    end
    alias eql? ==

    # @return [Integer] the hash of {#to_h}, consistent with {#==}
    def hash
      to_h.hash
    end

    # @return [String] the fields that are set, e.g.
    #   "#<Forkflag::Context user_id=\"42\" properties={\"plan\"=>\"pro\"}>"
    def inspect
      "#<Forkflag::Context #{to_h.map { |k, v| "#{k}=#{v.inspect}" }.join(" ")}>"
    end
  end
end
