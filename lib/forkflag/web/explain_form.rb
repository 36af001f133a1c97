# frozen_string_literal: true

module Forkflag
  class Web
    # The explain page's form, read from the query string: the flag's name
    # and the context (user id, session id, remote address, and properties
    # as `key=value` lines). A line it cannot read is reported, naming the
    # line; nothing raises.
    class ExplainForm
      # The context fields the form has: parameter => context key.
      FIELDS = { "user_id" => :user_id, "session_id" => :session_id, "remote_address" => :remote_address }.freeze
      # Most property lines read.
      MAX_PROPERTIES = 100

      # @return [String] the flag's name ("" when the form was not sent)
      attr_reader :flag
      # @return [Hash{String=>String}] the form's values, as sent (to fill it again)
      attr_reader :values
      # @return [Array<String>] what could not be read, one message each
      attr_reader :errors

      # @param request [Request]
      def initialize(request)
        @flag = request["flag"]
        @values = (FIELDS.keys + ["properties"]).to_h { |k| [k, request[k]] }
        @errors = []
        @properties = parse_properties(@values["properties"])
      end

      # @return [Boolean] whether a flag was asked about
      def submitted?
        !@flag.empty?
      end

      # @return [Boolean] whether everything sent could be read
      def valid?
        @errors.empty?
      end

      # The context to explain with, as {Client#explain} takes it.
      #
      # @return [Hash{Symbol=>Object}] only the fields given
      def context
        context = {}
        FIELDS.each { |param, key| context[key] = @values[param] unless @values[param].empty? }
        context[:properties] = @properties unless @properties.empty?
        context
      end

      private

      def parse_properties(text)
        properties = {}
        lines = text.split(/\r\n|\n|\r/)
        if lines.size > MAX_PROPERTIES
          @errors << "properties: #{lines.size} lines; at most #{MAX_PROPERTIES} are read"
          return properties
        end
        lines.each_with_index do |line, i|
          next if line.strip.empty?

          key, value = read_line(line, i + 1)
          next unless key

          @errors << "properties line #{i + 1}: #{key.inspect} is given twice" if properties.key?(key)
          properties[key] = value
        end
        properties
      end

      def read_line(line, number)
        key, separator, value = line.partition("=")
        key = key.strip
        if separator.empty? || key.empty?
          @errors << "properties line #{number}: expected key=value, got #{line.strip.inspect}"
          return nil
        end
        [key, value.strip]
      end
    end
  end
end
